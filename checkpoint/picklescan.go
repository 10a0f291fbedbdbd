package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// scanPickle walks the opcodes of one pickle at the start of data, without building anything,
// and returns the offset just past its STOP opcode. Every length-prefixed argument is checked
// against the bytes that remain, so that the unpickler, which allocates a buffer of the length a
// file claims before reading it, never sees a length larger than the file. It also finds where
// one pickle ends and the next begins in a legacy PyTorch file, which is several pickles in a row.
func scanPickle(data []byte) (int, error) {
	pos := 0
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("pickle truncated at byte %d: an argument needs %d bytes, %d remain", pos, n, len(data)-pos)
		}
		return nil
	}
	line := func() error {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return fmt.Errorf("pickle truncated at byte %d: a text argument has no end of line", pos)
		}
		pos += i + 1
		return nil
	}
	// counted skips an argument that is a little-endian length of size lenBytes and that many bytes.
	counted := func(lenBytes int, signed bool) error {
		if err := need(uint64(lenBytes)); err != nil {
			return err
		}
		var n uint64
		switch lenBytes {
		case 1:
			n = uint64(data[pos])
		case 4:
			v := binary.LittleEndian.Uint32(data[pos:])
			if signed && int32(v) < 0 {
				return fmt.Errorf("pickle corrupt at byte %d: negative length", pos)
			}
			n = uint64(v)
		case 8:
			n = binary.LittleEndian.Uint64(data[pos:])
		}
		pos += lenBytes
		if err := need(n); err != nil {
			return err
		}
		pos += int(n)
		return nil
	}
	for pos < len(data) {
		op := data[pos]
		at := pos
		pos++
		var err error
		switch op {
		case '(', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', ')', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98:
			// no argument
		case '.':
			return pos, nil
		case 'F', 'I', 'L', 'P', 'S', 'V', 'g', 'p':
			err = line()
		case 'c', 'i':
			if err = line(); err == nil {
				err = line()
			}
		case 'K', 'h', 'q', 0x80, 0x82:
			err = need(1)
			pos++
		case 'M', 0x83:
			err = need(2)
			pos += 2
		case 'J', 'j', 'r', 0x84:
			err = need(4)
			pos += 4
		case 'G':
			err = need(8)
			pos += 8
		case 0x95: // FRAME: its length, then the framed opcodes, which we scan inline
			if err = need(8); err == nil {
				n := binary.LittleEndian.Uint64(data[pos:])
				pos += 8
				err = need(n)
			}
		case 0x8a: // LONG1
			if err = need(1); err == nil && data[pos] == 0 {
				// Python reads an empty LONG1 as 0; the unpickler we use does not handle it.
				return 0, fmt.Errorf("pickle opcode LONG1 with no bytes at byte %d is not supported", at)
			}
			if err == nil {
				err = counted(1, false)
			}
		case 0x8b: // LONG4
			if err = need(4); err == nil && binary.LittleEndian.Uint32(data[pos:]) == 0 {
				return 0, fmt.Errorf("pickle opcode LONG4 with no bytes at byte %d is not supported", at)
			}
			if err == nil {
				err = counted(4, true)
			}
		case 'U', 'C', 0x8c:
			err = counted(1, false)
		case 'T', 'X', 'B':
			err = counted(4, op == 'T')
		case 0x8d, 0x8e, 0x96:
			err = counted(8, false)
		default:
			return 0, fmt.Errorf("not a pickle opcode: byte 0x%02x at %d", op, at)
		}
		if err != nil {
			return 0, err
		}
		if pos > len(data) {
			return 0, fmt.Errorf("pickle truncated at byte %d", at)
		}
	}
	return 0, fmt.Errorf("pickle truncated: no STOP opcode in %d bytes", len(data))
}
