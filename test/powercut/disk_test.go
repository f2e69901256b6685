package powercut

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func block(b byte) []byte { return bytes.Repeat([]byte{b}, BlockSize) }

func readBlock(t *testing.T, d *Disk, n int64) []byte {
	t.Helper()
	p := make([]byte, BlockSize)
	if _, err := d.ReadAt(p, n*BlockSize); err != nil {
		t.Fatal(err)
	}
	return p
}

// The volatile cache: reads see every write, a cut keeps only what a
// flush or FUA made durable.
func TestDiskCutLosesUnflushedWrites(t *testing.T) {
	d, err := NewDisk(make([]byte, 8*BlockSize))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.WriteAt(block(1), 0, false))
	d.Flush()
	must(d.WriteAt(block(2), 0, false))          // overwrites a durable block, unflushed
	must(d.WriteAt(block(3), BlockSize, false))  // unflushed
	must(d.WriteAt(block(4), 2*BlockSize, true)) // FUA
	must(d.WriteAt([]byte{9}, 3*BlockSize+7, false))
	if got := readBlock(t, d, 0); got[0] != 2 {
		t.Fatalf("read before the cut: %d, want the last write 2", got[0])
	}
	if d.Dirty() != 3 {
		t.Fatalf("%d dirty blocks, want 3", d.Dirty())
	}
	dropped, kept := d.Cut(nil)
	if dropped != 3 || kept != 0 {
		t.Fatalf("cut dropped %d kept %d, want 3 and 0", dropped, kept)
	}
	for n, want := range []byte{1, 0, 4, 0} {
		if got := readBlock(t, d, int64(n)); !bytes.Equal(got, block(want)) {
			t.Errorf("block %d after the cut starts %d, want all %d", n, got[0], want)
		}
	}
}

// A torn cut keeps some cached blocks whole and drops the others whole.
func TestDiskTornCut(t *testing.T) {
	d, _ := NewDisk(make([]byte, 64*BlockSize))
	for n := range int64(64) {
		if err := d.WriteAt(block(byte(n+1)), n*BlockSize, false); err != nil {
			t.Fatal(err)
		}
	}
	dropped, kept := d.Cut(CoinToss(rand.New(rand.NewPCG(1, 2))))
	if dropped+kept != 64 || dropped == 0 || kept == 0 {
		t.Fatalf("torn cut dropped %d kept %d of 64", dropped, kept)
	}
	survived := 0
	for n := range int64(64) {
		got := readBlock(t, d, n)
		switch {
		case bytes.Equal(got, block(byte(n+1))):
			survived++
		case !bytes.Equal(got, block(0)):
			t.Fatalf("block %d is neither old nor new", n)
		}
	}
	if survived != kept {
		t.Errorf("%d blocks survived, the cut kept %d", survived, kept)
	}
}

func TestDiskRejectsOutOfRange(t *testing.T) {
	d, _ := NewDisk(make([]byte, BlockSize))
	if err := d.WriteAt([]byte{1, 2}, BlockSize-1, false); err == nil {
		t.Error("a write past the end was accepted")
	}
	if _, err := NewDisk(make([]byte, 100)); err == nil {
		t.Error("a disk of 100 bytes was accepted")
	}
}
