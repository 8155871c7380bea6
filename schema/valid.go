package schema

// ValidJSON reports whether data is one JSON value, with white space around
// it: what encoding/json's Valid reports (FuzzValidJSON compares them on
// every input), nesting limit included, in one pass over the bytes instead
// of a state function per byte, in about a third of its time. Like Valid,
// it does not check that strings are UTF-8 (CheckText does). It allocates
// only for values nested more than 64 deep.
func ValidJSON(data []byte) bool {
	var small [64]bool // the open containers, innermost last: true for an object
	open := small[:0]
	i := skipJSONSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case '{', '[':
			object := data[i] == '{'
			if len(open) >= maxJSONNesting {
				return false
			}
			i = skipJSONSpace(data, i+1)
			if i < len(data) && data[i] == closer(object) {
				i++
				break
			}
			open = append(open, object)
			if object {
				if i = objectKey(data, i); i < 0 {
					return false
				}
			}
			continue
		case '"':
			if i = skipJSONString(data, i); i < 0 {
				return false
			}
		case 't':
			if i = skipLiteral(data, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = skipLiteral(data, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = skipLiteral(data, i, "null"); i < 0 {
				return false
			}
		default:
			if i = skipJSONNumber(data, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close what it ends, and find where the next
		// one starts.
		for {
			i = skipJSONSpace(data, i)
			if len(open) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			object := open[len(open)-1]
			if data[i] == closer(object) {
				open = open[:len(open)-1]
				i++
				continue
			}
			if data[i] != ',' {
				return false
			}
			i = skipJSONSpace(data, i+1)
			if object {
				if i = objectKey(data, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// maxJSONNesting is encoding/json's bound on the containers open at once.
const maxJSONNesting = 10000

func closer(object bool) byte {
	if object {
		return '}'
	}
	return ']'
}

// objectKey moves past a member's key and its colon at data[i:], to where
// its value starts; -1 if there is none.
func objectKey(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = skipJSONString(data, i); i < 0 {
		return -1
	}
	i = skipJSONSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipJSONSpace(data, i+1)
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipJSONString moves past the string that opens at data[i]; -1 if it is
// not one: unterminated, a control character, or an escape the grammar
// does not have.
func skipJSONString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := hex4(data, i+1); !ok {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// skipLiteral moves past word at data[i:]; -1 if it is not there.
func skipLiteral(data []byte, i int, word string) int {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

// skipJSONNumber moves past the number at data[i:]; -1 if there is none:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipJSONNumber(data []byte, i int) int {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return -1
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}
