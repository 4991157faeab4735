#!/usr/bin/env bash
# bench/extract-corpus.sh DIR: builds the text extraction corpus of
# bench/extract.sh in DIR (kept between runs: delete DIR to rebuild it).
#
# Every document comes from an installed Debian package (the list is
# EXTRACT_DEBS in bench/extract.sh), never from the project's own fixtures:
#
#  - pdf/: every PDF under /usr/share/doc, /usr/share/texlive and
#    /usr/share/texmf (gzipped ones unpacked), plus the Writer PDF export of
#    the HTML pages below (LibreOffice as a second PDF producer);
#  - docx/, odt/, rtf/: LibreOffice Writer's conversion of every 25th page of
#    the PostgreSQL 15 manual (postgresql-doc-15, HTML), and of LibreOffice's
#    own text templates (.ott) to docx;
#  - xlsx/, ods/: LibreOffice Calc's import of the same HTML pages (their
#    tables), and LibreOffice's spreadsheet templates (.ots);
#  - pptx/, odp/: LibreOffice's presentation templates (.otp), converted;
#  - html/, txt/: the HTML pages themselves, and the plain text files of
#    /usr/share/common-licenses.
#
# The reference text of each document is written next to it as NAME.ref.txt
# by the reference extractor of its family (bench/extract.sh says which).
set -euo pipefail
DIR=${1:?usage: extract-corpus.sh DIR}
mkdir -p "$DIR"/{pdf,docx,odt,rtf,xlsx,ods,pptx,odp,html,txt,src}
export HOME="$DIR/home"   # LibreOffice's profile stays in the corpus folder
mkdir -p "$HOME"
soffice() { timeout 1200 /usr/bin/soffice --headless --norestore "$@" >/dev/null 2>&1 || true; }

# PDFs shipped by the packages.
find /usr/share/doc /usr/share/texlive /usr/share/texmf \( -name '*.pdf' -o -name '*.pdf.gz' \) 2>/dev/null | sort | while read -r f; do
	b=$(echo "${f#/usr/share/}" | tr / _)
	case $f in
	*.gz) [ -s "$DIR/pdf/${b%.gz}" ] || zcat "$f" >"$DIR/pdf/${b%.gz}" ;;
	*) [ -s "$DIR/pdf/$b" ] || cp "$f" "$DIR/pdf/$b" ;;
	esac
done

# Every 25th page of the PostgreSQL manual.
if [ -z "$(ls "$DIR/src")" ]; then
	ls /usr/share/doc/postgresql-doc-15/html/*.html | sort | awk 'NR % 25 == 1' | while read -r f; do
		cp "$f" "$DIR/src/pg_$(basename "$f")"
	done
fi
cp -n "$DIR"/src/*.html "$DIR/html/"
if [ -z "$(ls "$DIR/docx")" ]; then
	soffice --infilter="HTML (StarWriter)" --convert-to 'docx:MS Word 2007 XML' --outdir "$DIR/docx" "$DIR"/src/*.html
	soffice --infilter="HTML (StarWriter)" --convert-to odt:writer8 --outdir "$DIR/odt" "$DIR"/src/*.html
	soffice --infilter="HTML (StarWriter)" --convert-to 'rtf:Rich Text Format' --outdir "$DIR/rtf" "$DIR"/src/*.html
	soffice --infilter="HTML (StarWriter)" --convert-to pdf:writer_pdf_Export --outdir "$DIR/pdf" "$DIR"/src/*.html
	find /usr/lib/libreoffice/share/template -name '*.ott' | sort | while read -r f; do
		n=lo_$(basename "$f" .ott); cp "$f" "$DIR/odt/$n.odt"
	done
	soffice --convert-to 'docx:MS Word 2007 XML' --outdir "$DIR/docx" "$DIR"/odt/lo_*.odt
fi
if [ -z "$(ls "$DIR/xlsx")" ]; then
	soffice --infilter="HTML (StarCalc)" --convert-to 'xlsx:Calc MS Excel 2007 XML' --outdir "$DIR/xlsx" "$DIR"/src/*.html
	soffice --infilter="HTML (StarCalc)" --convert-to ods:calc8 --outdir "$DIR/ods" "$DIR"/src/*.html
	find /usr/lib/libreoffice/share/template -name '*.ots' | sort | while read -r f; do
		n=lo_$(basename "$f" .ots); cp "$f" "$DIR/ods/$n.ods"
	done
	soffice --convert-to 'xlsx:Calc MS Excel 2007 XML' --outdir "$DIR/xlsx" "$DIR"/ods/lo_*.ods
fi
if [ -z "$(ls "$DIR/pptx")" ]; then
	find /usr/lib/libreoffice/share/template -name '*.otp' | sort | while read -r f; do
		n=lo_$(basename "$f" .otp); cp "$f" "$DIR/odp/$n.odp"
	done
	soffice --convert-to 'pptx:Impress MS PowerPoint 2007 XML' --outdir "$DIR/pptx" "$DIR"/odp/lo_*.odp
fi
# Presentations with real text: the PDF export of the manual's pages
# imported by Impress (a slide per page), and converted to pptx.
if ! ls "$DIR"/odp/pg_*.odp >/dev/null 2>&1; then
	soffice --infilter=impress_pdf_import --convert-to odp --outdir "$DIR/odp" "$DIR"/pdf/pg_*.pdf
	soffice --convert-to 'pptx:Impress MS PowerPoint 2007 XML' --outdir "$DIR/pptx" "$DIR"/odp/pg_*.odp
fi
for f in /usr/share/common-licenses/*; do
	[ -f "$f" ] && cp -n "$f" "$DIR/txt/$(basename "$f").txt"
done
echo "corpus: $(find "$DIR"/{pdf,docx,odt,rtf,xlsx,ods,pptx,odp,html,txt} -type f | wc -l) documents in $DIR" >&2
