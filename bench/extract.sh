#!/usr/bin/env bash
# bench/extract.sh: the text extraction benchmark (make -C bench extract,
# and part of make bench). It rewrites the generated part of the "Text
# extraction" section of RESULTS.md and results/extract.json.
#
#  1. installs the Debian packages of EXTRACT_DEBS: the candidate tools
#     (poppler-utils, mupdf-tools, docx2txt, odt2txt, unrtf), LibreOffice
#     (which converts the corpus and writes the reference texts of the office
#     formats) and the documentation packages the corpus is taken from;
#  2. builds the corpus in out/extract-corpus (extract-corpus.sh) and its
#     reference texts (extract-refs.sh), once: delete the folder to redo it;
#  3. runs out/bin/extractbench (cmd/extractbench): every candidate on every
#     document, RUNS times.
#
# Environment: QUICK=1 (3 documents per family, one run, results to
# out/RESULTS.quick.md), EXTRACT_RUNS (default 3), EXTRACT_PDF_EVERY (every
# Nth PDF of the corpus, default 4: the pure-Go PDF libraries take minutes
# per run on the whole of it).
set -euo pipefail
cd "$(dirname "$0")"
EXTRACT_DEBS="poppler-utils mupdf-tools docx2txt odt2txt unrtf time libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui postgresql-doc-15 r-doc-pdf asymptote-doc texlive-latex-base-doc gnuplot-doc"
../scripts/ensure-deb.sh $EXTRACT_DEBS
mkdir -p out/bin
go build -trimpath -o out/bin/extractbench ./cmd/extractbench
./extract-corpus.sh "$PWD/out/extract-corpus"
./extract-refs.sh "$PWD/out/extract-corpus"
args=(-corpus out/extract-corpus -work out/extract-work -pdf-every "${EXTRACT_PDF_EVERY:-4}")
if [ -n "${QUICK:-}" ]; then
	args+=(-runs 1 -limit 3 -results out/RESULTS.quick.md)
else
	args+=(-runs "${EXTRACT_RUNS:-3}" -results RESULTS.md -summary results/extract.json)
fi
out/bin/extractbench "${args[@]}"
