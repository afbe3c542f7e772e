package protocol

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// Fuzz targets of the log protocol's messages (§8) and of signed tree
// heads, whatever carries them, seeded from the docs/example heads and
// the tree head vectors.

// signedHeadSeeds are (head, signature) pairs: the docs/example heads,
// each also with the other's signature, the tree head vectors with one of
// them, and the heads of the CheckTreeHead vectors (online keys, §5.6)
// with theirs. Nothing is signed here: a fuzz worker that decrypts a
// test key spends its first second on it.
func signedHeadSeeds(f *testing.F) [][2][]byte {
	var heads, sigs [][]byte
	for _, which := range []string{"old", "new"} {
		heads = append(heads, vecUnb64(f, exampleReceiptMember(f, "consistency.json", which, "signed_data")))
		sigs = append(sigs, vecUnb64(f, exampleReceiptMember(f, "consistency.json", which, "signature")))
	}
	out := [][2][]byte{{heads[0], sigs[0]}, {heads[1], sigs[1]}, {heads[0], sigs[1]}}
	for _, v := range vectorsOf(f, "ParseTreeHead") {
		out = append(out, [2][]byte{v.input(f), sigs[0]})
	}
	for _, v := range vectorsOf(f, "CheckTreeHead") {
		out = append(out, [2][]byte{mustHex(f, v.Head), v.input(f)})
	}
	return out
}

func FuzzParseLogRequest(f *testing.F) {
	f.Add(EncodeLogRequest(0, 0))
	f.Add(EncodeLogRequest(3, 7))
	f.Add(EncodeLogRequest(1<<63, 1))
	f.Add(EncodeRecord(logRequestTag, u64(1)))
	f.Add(EncodeRecord(logRequestTag, u64(1), []byte{1, 2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, n, err := ParseLogRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := EncodeLogRequest(o, n); !bytes.Equal(re, b) {
			t.Fatalf("request %x re-encodes to %x", b, re)
		}
	})
}

// FuzzParseLogResponse: a response that parses re-encodes to its bytes;
// the head in it is accepted, as logsync.Client accepts it, only when
// server signed it.
func FuzzParseLogResponse(f *testing.F) {
	var proof tlog.TreeProof
	for i := range 3 {
		proof = append(proof, tlog.Hash(fill(HashSize, byte(i+1))))
	}
	for _, h := range signedHeadSeeds(f) {
		f.Add((&LogResponse{Status: StatusOK, Head: h[0], Sig: h[1]}).Encode())
		f.Add((&LogResponse{Status: StatusOK, Head: h[0], Sig: h[1], Proof: proof}).Encode())
	}
	f.Add((&LogResponse{Status: StatusBadRequest, Message: "the log is empty"}).Encode())
	f.Add(EncodeRecord(logResponseTag, []byte(StatusBadRequest), []byte("no"), []byte("sig"), nil))
	f.Add(EncodeRecord(logResponseTag, []byte(StatusOK), nil, nil, fill(33, 1)))
	f.Add(EncodeRecord(logResponseTag, bytes.Repeat([]byte("long-status"), 8), nil, nil, nil))
	trust := vectorTrust(f)
	server := entry(f, "server")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLogResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("response %x re-encodes to %x", b, re)
		}
		if r.Status != StatusOK {
			return
		}
		sth, err := trust.CheckServerHead(r.Head, r.Sig, server, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !isVerifyError(err) && !errors.Is(err, ErrReplyMismatch) {
				t.Fatalf("CheckServerHead error %v is none of the documented ones", err)
			}
			return
		}
		if sth.Head.ServerID != server.ID || sth.Head.ServerPeer != server.PeerID || !signedByKey(server.PublicKey, r.Head, r.Sig) {
			t.Fatalf("accepted a head server did not sign: %+v", sth.Head)
		}
	})
}

// FuzzCheckTreeHead: a head checked through a cache that lives across
// inputs (as a verifier's does) gets the answer of a check without one,
// and an accepted head is one a trusted key signed.
func FuzzCheckTreeHead(f *testing.F) {
	for _, h := range signedHeadSeeds(f) {
		f.Add(h[0], h[1])
	}
	trust := vectorTrust(f)
	cache := NewHeadCache(8)
	f.Fuzz(func(t *testing.T, encoded, sig []byte) {
		sth := checkHeadCached(t, trust, cache, encoded, sig)
		if sth == nil {
			return
		}
		if !trust.Trusts(sth.Head.ServerID) {
			t.Fatalf("accepted a head of %s, who is not trusted", sth.Head.ServerID)
		}
		e := entry(t, sth.Head.ServerID)
		if e.PeerID != sth.Head.ServerPeer || !signedByKey(e.PublicKey, encoded, sig) {
			t.Fatalf("accepted a head %s's key did not sign", sth.Head.ServerID)
		}
		if len(sig) > 0 {
			if _, err := trust.CheckTreeHead(encoded, flip(sig, len(sig)/2), cache); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("a flipped signature, after the head was cached: %v", err)
			}
		}
	})
}

// checkHeadCached checks a head without and twice with cache, which must
// agree, and returns it, or nil when it is refused with a documented
// error.
func checkHeadCached(t *testing.T, trust *Trust, cache *HeadCache, encoded, sig []byte) *SignedTreeHead {
	t.Helper()
	sth, err := trust.CheckTreeHead(encoded, sig, nil)
	for i := range 2 {
		sth2, err2 := trust.CheckTreeHead(encoded, sig, cache)
		if !sameError(err, err2) {
			t.Fatalf("without a cache: %v; with one (%d): %v", err, i, err2)
		}
		if err == nil && !SameHead(sth, sth2) {
			t.Fatal("the cache returned another head")
		}
	}
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !isVerifyError(err) {
			t.Fatalf("error %v is none of the documented ones", err)
		}
		return nil
	}
	return sth
}
