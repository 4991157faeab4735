package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dslipak/pdf"
	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	ledongthucpdf "github.com/ledongthuc/pdf"
	"github.com/lu4p/cat"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/thedatashed/xlsxreader"
	"github.com/xuri/excelize/v2"
	rscpdf "rsc.io/pdf"
)

var pdfiumInstance pdfium.Pdfium

// initLib does a library's one-time initialisation, outside the timed
// part (what a long-running server would do once).
func initLib(name string) error {
	if name != "go-pdfium" {
		return nil
	}
	// wazero's compilation cache on disk: the 6 MB PDFium module is compiled
	// once, not once per child.
	cacheDir := filepath.Join(os.TempDir(), "extractbench-wazero-cache")
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return err
	}
	pool, err := webassembly.Init(webassembly.Config{MinIdle: 1, MaxIdle: 1, MaxTotal: 1,
		RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache).
			WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling)})
	if err != nil {
		return err
	}
	pdfiumInstance, err = pool.GetInstance(30 * time.Second)
	return err
}

func pdfiumText(_ context.Context, data []byte, _ string) (string, error) {
	d, err := pdfiumInstance.OpenDocument(&requests.OpenDocument{File: &data})
	if err != nil {
		return "", err
	}
	defer pdfiumInstance.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: d.Document})
	pc, err := pdfiumInstance.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: d.Document})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := 0; i < pc.PageCount; i++ {
		t, err := pdfiumInstance.GetPageText(&requests.GetPageText{Page: requests.Page{ByIndex: &requests.PageByIndex{Document: d.Document, Index: i}}})
		if err != nil {
			return b.String(), err
		}
		b.WriteString(t.Text)
		b.WriteString("\n\f")
	}
	return b.String(), nil
}

func ledongthuc(_ context.Context, data []byte, _ string) (string, error) {
	r, err := ledongthucpdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	rd, err := r.GetPlainText()
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(rd)
	return string(b), err
}

func dslipak(_ context.Context, data []byte, _ string) (string, error) {
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	rd, err := r.GetPlainText()
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(rd)
	return string(b), err
}

// rscPDF writes the text runs of each page's content, a space between runs
// and a line break where the baseline changes.
func rscPDF(_ context.Context, data []byte, _ string) (string, error) {
	r, err := rscpdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := 1; i <= r.NumPage(); i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		lastY := -1.0
		for _, t := range p.Content().Text {
			if lastY >= 0 && t.Y != lastY {
				b.WriteByte('\n')
			}
			b.WriteString(t.S)
			lastY = t.Y
		}
		b.WriteString("\n\f")
	}
	return b.String(), nil
}

func lu4pCat(_ context.Context, data []byte, _ string) (string, error) { return cat.FromBytes(data) }

func excelizeText(_ context.Context, data []byte, _ string) (string, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	defer f.Close()
	var b strings.Builder
	for _, sh := range f.GetSheetList() {
		b.WriteString(sh + "\n")
		rows, err := f.GetRows(sh)
		if err != nil {
			return b.String(), err
		}
		for _, row := range rows {
			b.WriteString(strings.Join(row, "\t") + "\n")
		}
	}
	return b.String(), nil
}

func xlsxreaderText(_ context.Context, data []byte, _ string) (string, error) {
	x, err := xlsxreader.NewReader(data)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, sh := range x.Sheets {
		b.WriteString(sh + "\n")
		for row := range x.ReadRows(sh) {
			if row.Error != nil {
				return b.String(), row.Error
			}
			for i, c := range row.Cells {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(c.Value)
			}
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}
