package wording

import (
	"strconv"
	"unicode/utf8"

	"github.com/connectorhq/connector/secret"
)

// MaxQuoted is the most of a line, name or value that an error quotes:
// the start of a longer one (a pasted certificate, a key missing its =)
// says which it is, and the whole of it made an error, a log line and an
// error reply as large as the text.
const MaxQuoted = 100

// Quote is text quoted as an error shows it (strconv.Quote), cut to its
// first MaxQuoted bytes, with its size, when it is longer:
// "-----BEGIN CERTIFICATE-----\nMII"… (1832 bytes). A longer text's URL
// passwords are hidden before it is cut (secret.RedactURLs): a cut inside
// a password leaves no @ by which a later redaction of the error could
// find it.
func Quote(text string) string {
	if len(text) <= MaxQuoted {
		return strconv.Quote(text)
	}
	if text = secret.RedactURLs(text); len(text) <= MaxQuoted {
		return strconv.Quote(text)
	}
	return strconv.Quote(text[:cutAt(text)]) + "… (" + strconv.Itoa(len(text)) + " bytes)"
}

// Clip is text as an error shows it unquoted (a section's or key's name),
// cut as Quote cuts it, URL passwords hidden first.
func Clip(text string) string {
	if len(text) <= MaxQuoted {
		return text
	}
	if text = secret.RedactURLs(text); len(text) <= MaxQuoted {
		return text
	}
	return text[:cutAt(text)] + "… (" + strconv.Itoa(len(text)) + " bytes)"
}

// cutAt is where Quote and Clip cut text: at most MaxQuoted bytes, never
// inside a character.
func cutAt(text string) int {
	i := MaxQuoted
	for i > 0 && !utf8.RuneStart(text[i]) {
		i--
	}
	return i
}
