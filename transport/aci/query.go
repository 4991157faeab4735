package aci

// AppendQueryEscape appends s escaped as url.QueryEscape escapes it, for
// an ACI parameter in a query or a form body, without allocating:
// letters, digits and -_.~ as they are, a space as +, every other byte as
// %XX. Runs of bytes that need no escape are copied whole.
func AppendQueryEscape[S ~string | ~[]byte](b []byte, s S) []byte {
	const hex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if queryUnreserved(c) {
			continue
		}
		b = append(b, s[start:i]...)
		if c == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// QueryEscapedLen returns the length of what AppendQueryEscape appends
// for s, so that a large value (a form body of megabytes) can be escaped
// into a buffer grown once.
func QueryEscapedLen[S ~string | ~[]byte](s S) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && !queryUnreserved(c) {
			n += 2
		}
	}
	return n
}

// queryUnreserved reports whether c goes unescaped in a query component.
func queryUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}
