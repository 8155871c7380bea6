package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads a body of a known small size into one buffer of that size,
// in as many reads as its bytes take, and any other body to its end; it
// passes on a read's error.
func TestReadAll(t *testing.T) {
	small := strings.Repeat("s", 100)
	large := strings.Repeat("l", smallBody+1)
	for _, tc := range []struct {
		name string
		r    io.Reader
		size int64
		want string
	}{
		{"known small size", strings.NewReader(small), int64(len(small)), small},
		{"known small size, a byte a read", iotest.OneByteReader(strings.NewReader(small)), int64(len(small)), small},
		{"known small size, EOF with the last bytes", iotest.DataErrReader(strings.NewReader(small)), int64(len(small)), small},
		{"empty", strings.NewReader(""), 0, ""},
		{"unknown size", strings.NewReader(large), -1, large},
		{"known large size", strings.NewReader(large), int64(len(large)), large},
	} {
		b, err := readAll(tc.r, tc.size)
		if err != nil || string(b) != tc.want {
			t.Errorf("%s: %d bytes, %v; want %d bytes", tc.name, len(b), err, len(tc.want))
		}
		if tc.size >= 0 && tc.size <= smallBody && cap(b) != int(tc.size) {
			t.Errorf("%s: buffer of %d bytes, want the size %d", tc.name, cap(b), tc.size)
		}
	}
	boom := errors.New("boom")
	for _, size := range []int64{100, -1} {
		r := io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom))
		if b, err := readAll(r, size); !errors.Is(err, boom) || !bytes.Equal(b, []byte("abc")) {
			t.Errorf("size %d: %q, %v; want abc and the read's error", size, b, err)
		}
	}
}
