package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// The v2 example: a log of seven leaves written by the real authority (node/authority) in
// three batches of 1, 2 and 4 stamps, so there are signed tree heads of
// sizes 1, 3 and 7. hello.txt is leaf 5.

// batchTimes are what the signer's clock reads for each batch.
var batchTimes = []time.Time{
	time.Date(2026, 11, 25, 12, 0, 1, 100000000, time.UTC),
	time.Date(2026, 11, 25, 12, 0, 1, 200000000, time.UTC),
	time.Date(2026, 11, 25, 12, 0, 1, 300000000, time.UTC),
}

// freshTime is what the signer's clock reads when, a heartbeat (one
// minute, PROTOCOL.md §13.2) after batch 3 and with no stamp since, it
// signs a fresh head of the same tree: the head the witnesses of §12.7
// cosign.
var freshTime = time.Date(2026, 11, 25, 12, 1, 1, 300000000, time.UTC)

// batchSizes splits the seven stamps into batches.
var batchSizes = []int{1, 2, 4}

// exampleIndex is the serial (leaf index) of hello.txt in the log.
const exampleIndex = 5

// logDocument is the document of leaf i: hello.txt for exampleIndex, a
// short line otherwise.
func logDocument(i int) []byte {
	if i == exampleIndex {
		return document
	}
	return fmt.Appendf(nil, "document %d\n", i)
}

// logNonce is the nonce of leaf i: the v1 example's for hello.txt, 32
// bytes of 0xa0+i otherwise.
func logNonce(i int) []byte {
	if i == exampleIndex {
		return nonce
	}
	return bytes.Repeat([]byte{byte(0xa0 + i)}, protocol.NonceSize)
}

type logExample struct {
	stamps []*protocol.LogStamp // by serial
	heads  []*protocol.SignedTreeHead
	// consistency proof from heads[1] (size 3) to heads[2] (size 7)
	consistency *protocol.Consistency
	// fresh is the head of the same tree of size 7 that the authority
	// signs at freshTime (Refresh), when the log did not grow.
	fresh *protocol.SignedTreeHead
}

// buildLog runs the authority on a fresh log in a temporary directory. Its
// clock blocks in each batch until the next batch is queued, and each
// batch is answered before the next is appended, which makes the batches
// and their heads, and so every byte, deterministic: the signer drains
// its queue before it reads the clock, and signs a head over whatever
// is appended. Once every stamp is answered, the clock reads freshTime
// and the authority signs a fresh head (authority.Refresh).
func buildLog(key *rsa.PrivateKey, server, requester identity.Entry) (*logExample, error) {
	tmp, err := os.MkdirTemp("", "docexample-log-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	lg, err := merklelog.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer lg.Close()

	entered := make(chan int)
	release := make([]chan struct{}, len(batchSizes))
	for i := range release {
		release[i] = make(chan struct{})
	}
	var calls atomic.Int32
	var done atomic.Bool // every batch is answered
	now := func() time.Time {
		if done.Load() {
			return freshTime
		}
		i := int(calls.Add(1) - 1) // runs on the signer's goroutine only
		entered <- i
		<-release[i]
		return batchTimes[i]
	}
	signer, err := authority.New(lg, key, server, authority.WithClock(now), authority.WithOnlineKeyLifetime(0))
	if err != nil {
		return nil, err
	}

	total := 0
	for _, n := range batchSizes {
		total += n
	}
	type result struct {
		st  *protocol.LogStamp
		err error
	}
	results := make([]chan result, total)
	submit := func(i int) {
		results[i] = make(chan result, 1)
		h := sha256.Sum256(logDocument(i))
		f := signer.Add(context.Background(), authority.Entry{Requester: requester, Hash: h[:], Nonce: logNonce(i)})
		go func() { st, err := f(); results[i] <- result{st, err} }()
	}
	answers := make([]result, total)
	next, first := 0, 0
	for b, n := range batchSizes {
		for range n {
			submit(next)
			next++
		}
		if b > 0 {
			close(release[b-1]) // let the previous batch finish: this one is queued whole
		}
		if got := <-entered; got != b {
			return nil, fmt.Errorf("signer read its clock for batch %d, want %d", got, b)
		}
		if b > 0 {
			// Batch b-1 is appended and batch b is not: wait for the
			// head of b-1, so that the signer does not sign one head
			// for both.
			for i := first; i < next-n; i++ {
				answers[i] = <-results[i]
			}
			first = next - n
		}
	}
	close(release[len(release)-1])
	for i := first; i < total; i++ {
		answers[i] = <-results[i]
	}
	ex := &logExample{}
	for i, r := range answers {
		if r.err != nil {
			signer.Close()
			return nil, r.err
		}
		if r.st.Statement.Serial != uint64(i) {
			signer.Close()
			return nil, fmt.Errorf("stamp %d got serial %d", i, r.st.Statement.Serial)
		}
		ex.stamps = append(ex.stamps, r.st)
	}
	done.Store(true)
	fresh, err := refresh(signer)
	signer.Close()
	if err != nil {
		return nil, fmt.Errorf("fresh head: %w", err)
	}
	if fresh == nil || !fresh.Head.Time.Equal(freshTime) || fresh.Head.Size != uint64(total) {
		return nil, errors.New("the fresh head is not of the tree of seven leaves at freshTime")
	}
	ex.fresh = fresh

	for i := 0; i < total; {
		h := ex.stamps[i].Head
		ex.heads = append(ex.heads, h)
		i = int(h.Head.Size)
	}
	if len(ex.heads) != len(batchSizes) {
		return nil, fmt.Errorf("%d tree heads, want %d", len(ex.heads), len(batchSizes))
	}
	old, nw := ex.heads[1], ex.heads[2]
	proof, err := lg.ConsistencyProof(old.Head.Size, nw.Head.Size)
	if err != nil {
		return nil, err
	}
	ex.consistency = protocol.NewConsistency(old, nw, proof)
	return ex, nil
}

// refresh asks the authority for a fresh head, again while it answers
// ErrBusy (the pacer may not have seen the last batch through yet).
func refresh(signer *authority.Authority) (*protocol.SignedTreeHead, error) {
	for range 100 {
		sth, err := signer.Refresh(context.Background())
		if !errors.Is(err, authority.ErrBusy) {
			return sth, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, authority.ErrBusy
}

// checkLogExample checks the v2 receipt and the consistency proof with
// tsnode's verifier and with the by-hand algorithms of §5.
func checkLogExample(ex *logExample, trust *protocol.Trust) error {
	st := ex.stamps[exampleIndex]
	leaf := st.Statement.EncodeLeaf()
	h := st.Head.Head
	if _, _, err := checkInclusion(leaf, st.Statement.Serial, h.Size, h.Root, hashes(st.Proof)); err != nil {
		return fmt.Errorf("the specification's inclusion check fails on the example: %w", err)
	}
	var leafHashes []hash
	for _, s := range ex.stamps {
		leafHashes = append(leafHashes, leafHash(s.Statement.EncodeLeaf()))
	}
	for _, sth := range ex.heads {
		if treeHash(leafHashes, 0, int(sth.Head.Size)) != sth.Head.Root {
			return fmt.Errorf("the specification's tree hash differs from the root of size %d", sth.Head.Size)
		}
	}
	for _, sth := range ex.heads {
		f, err := parseRecord(sth.Encoded)
		if err != nil || len(f) != 6 || string(f[0]) != protocol.TreeHeadTag {
			return errors.New("the specification's tree head encoding differs from the server's")
		}
	}
	old, nw := ex.heads[1].Head, ex.heads[2].Head
	proof, err := (&protocol.Receipt{InclusionProof: ex.consistency.Proof}).ProofOf()
	if err != nil {
		return err
	}
	if _, _, err := checkConsistency(old.Size, nw.Size, old.Root, nw.Root, hashes(proof)); err != nil {
		return fmt.Errorf("the specification's consistency check fails on the example: %w", err)
	}
	if err := ex.consistency.Verify(trust); err != nil {
		return err
	}
	return nil
}

func hashes[T ~[32]byte](in []T) []hash {
	out := make([]hash, len(in))
	for i, h := range in {
		out[i] = hash(h)
	}
	return out
}
