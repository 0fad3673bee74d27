package scenario

import (
	"errors"
	"strconv"
	"strings"
)

// Error is a problem with a scenario file that its author must fix: where it
// is, which field, and what is wrong.
type Error struct {
	Pos Pos
	// Field is the dotted path of the field: namespaces.ns1.interfaces.veth_1.
	Field string
	Msg   string
}

// Error formats e as "file:line:col: field: msg".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one or more files, in file order.
type ErrorList []*Error

// Error joins the problems one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// IsInputError reports whether err is (or wraps) a problem with scenario
// input, which the CLI answers with exit code 2.
func IsInputError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

func itoa(i int) string    { return strconv.Itoa(i) }
func utoa(u uint64) string { return strconv.FormatUint(u, 10) }
