// Package msl turns Metal Shading Language sources into C++ for the MSL emulator
// (package metal/emu) at the token level: it lints what g++ would accept but Apple's
// compiler rejects, rewrites what C++ spells differently, and writes one wrapper per
// kernel plus a registry. The generator command metal/emu/gen drives it.
package msl

import (
	"fmt"
	"strings"
)

// Kind is a token's lexical class.
type Kind int

const (
	Space   Kind = iota // blanks and newlines
	Comment             // // or /* */
	Preproc             // a whole preprocessor line, continuations included
	Ident
	Number
	String // "…" or '…'
	Punct
)

// Token is one lexeme; Text is exactly the source bytes, so concatenating every token
// reproduces the file.
type Token struct {
	Kind Kind
	Text string
	Line int // 1-based line of the token's first byte
}

// puncts lists multi-character punctuators, longest first.
var puncts = []string{
	"<<=", ">>=", "...", "->*",
	"::", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
	"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", ".*", "##",
}

// Lex splits src into tokens. It fails only on an unterminated comment, string or
// character literal, naming the line.
func Lex(file, src string) ([]Token, error) {
	var toks []Token
	line := 1
	atLineStart := true
	i := 0
	emit := func(k Kind, j int) {
		t := Token{Kind: k, Text: src[i:j], Line: line}
		toks = append(toks, t)
		line += strings.Count(t.Text, "\n")
		i = j
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v':
			j := i
			for j < len(src) && strings.IndexByte(" \t\r\n\f\v", src[j]) >= 0 {
				if src[j] == '\n' {
					atLineStart = true
				}
				j++
			}
			emit(Space, j)
			continue
		case c == '#' && atLineStart:
			j := i
			for j < len(src) {
				if src[j] == '\\' && j+1 < len(src) && src[j+1] == '\n' {
					j += 2
					continue
				}
				if src[j] == '\\' && j+2 < len(src) && src[j+1] == '\r' && src[j+2] == '\n' {
					j += 3
					continue
				}
				if src[j] == '\n' {
					break
				}
				j++
			}
			emit(Preproc, j)
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			emit(Comment, i+j)
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated /* comment", file, line)
			}
			emit(Comment, i+2+j+2)
			continue
		}
		atLineStart = false
		switch {
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentChar(src[j]) {
				j++
			}
			emit(Ident, j)
		case isDigit(c) || (c == '.' && i+1 < len(src) && isDigit(src[i+1])):
			// pp-number: digits, letters, dots, and signs after an exponent letter.
			j := i + 1
			for j < len(src) {
				d := src[j]
				if (d == '+' || d == '-') && strings.IndexByte("eEpP", src[j-1]) >= 0 {
					j++
					continue
				}
				if isIdentChar(d) || d == '.' || d == '\'' {
					j++
					continue
				}
				break
			}
			emit(Number, j)
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("%s:%d: unterminated literal", file, line)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("%s:%d: unterminated literal", file, line)
			}
			emit(String, j+1)
		default:
			n := 1
			for _, p := range puncts {
				if strings.HasPrefix(src[i:], p) {
					n = len(p)
					break
				}
			}
			emit(Punct, i+n)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }

// isFloatLiteral reports whether a pp-number is a floating literal, and whether it carries
// a float (f/F) or half (h/H) suffix.
func isFloatLiteral(s string) (isFloat, suffixed bool) {
	l := strings.ToLower(strings.ReplaceAll(s, "'", ""))
	if strings.HasPrefix(l, "0x") {
		isFloat = strings.ContainsAny(l, ".p")
	} else {
		isFloat = strings.ContainsAny(l, ".e")
	}
	if !isFloat {
		return false, false
	}
	return true, strings.HasSuffix(l, "f") || strings.HasSuffix(l, "h")
}
