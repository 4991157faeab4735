#!/usr/bin/env bash
# bench/extract-refs.sh DIR: writes the reference text of every document of
# the corpus DIR (extract-corpus.sh) into DIR/ref/<family>/<name>.txt, once
# (delete DIR/ref to redo it):
#
#  - pdf: pdftotext (poppler-utils), the reference extractor the issue names;
#  - docx, odt, rtf, html: LibreOffice Writer's "Text (encoded)" UTF-8 export;
#  - xlsx, ods: LibreOffice Calc's CSV export of every sheet (tab-separated),
#    sheets concatenated;
#  - pptx, odp: LibreOffice Impress's PDF export, then pdftotext.
#
# LibreOffice is the reference for the office formats because it is the
# suite that wrote (or, for templates, shipped) them.
set -euo pipefail
DIR=${1:?usage: extract-refs.sh DIR}
export HOME="$DIR/home"
soffice() { timeout 1800 /usr/bin/soffice --headless --norestore "$@" >/dev/null 2>&1 || true; }
R="$DIR/ref"
mkdir -p "$R"/{pdf,docx,odt,rtf,html,xlsx,ods,pptx,odp,tmp}
# A family's references are written once, unless its folder has fewer
# files than the corpus has documents of it (documents were added).
fresh() { [ "$(ls "$DIR/$1" | wc -l)" -le "$(ls "$R/$1" | wc -l)" ]; }
fresh pdf || for f in "$DIR"/pdf/*.pdf; do
	timeout 120 pdftotext -enc UTF-8 -q "$f" "$R/pdf/$(basename "$f" .pdf).txt" || true
done
for fam in docx odt rtf; do
	fresh $fam || soffice --convert-to 'txt:Text (encoded):UTF8' --outdir "$R/$fam" "$DIR/$fam"/*."$fam"
done
fresh html || soffice --infilter="HTML (StarWriter)" --convert-to 'txt:Text (encoded):UTF8' --outdir "$R/html" "$DIR"/html/*.html
for fam in xlsx ods; do
	fresh $fam && continue
	rm -rf "$R/tmp"; mkdir -p "$R/tmp"
	soffice --convert-to 'csv:Text - txt - csv (StarCalc):9,34,76,1,,0,false,true,false,false,false,-1' --outdir "$R/tmp" "$DIR/$fam"/*."$fam"
	for f in "$DIR/$fam"/*."$fam"; do
		b=$(basename "$f" ."$fam")
		cat "$R/tmp/$b"*.csv >"$R/$fam/$b.txt" 2>/dev/null || true
	done
done
for fam in pptx odp; do
	fresh $fam && continue
	rm -rf "$R/tmp"; mkdir -p "$R/tmp"
	soffice --convert-to pdf:impress_pdf_Export --outdir "$R/tmp" "$DIR/$fam"/*."$fam"
	for f in "$R"/tmp/*.pdf; do
		timeout 120 pdftotext -enc UTF-8 -q "$f" "$R/$fam/$(basename "$f" .pdf).txt" || true
	done
done
rm -rf "$R/tmp"
echo "refs: $(find "$R" -name '*.txt' | wc -l) reference texts in $R" >&2
