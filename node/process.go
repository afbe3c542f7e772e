package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// Result is what happened to one document. Err is the first step that
// failed; the fields before it are filled in.
type Result struct {
	Path        string
	Hash        []byte
	Receipt     *protocol.Receipt
	ReceiptPath string
	Verdict     *protocol.Verdict
	// Tries of the stamp and of the relay (0: the step did not run).
	StampTries, RelayTries int
	// Warning says what the caller should know even of a success: a
	// stamp retried after a reset may have left an unanswered stamp.
	Warning string
	Err     error
	// relayed: a verifier was asked (OK needs a valid verdict).
	relayed bool
}

// OK reports whether every step succeeded and, when the document was
// relayed, the verifier said valid.
func (res *Result) OK() bool {
	return res.Err == nil && (!res.relayed || (res.Verdict != nil && res.Verdict.Valid()))
}

// WarnMaybeDuplicate is the warning of a stamp retried after its request
// may have been read: the server may have logged a stamp it never
// answered, under another serial, for the same document.
const WarnMaybeDuplicate = "retried after the stream failed with the request sent; the server may hold an unanswered stamp for this document"

// ScaledTimeout, as ProcessAll's timeout, gives each document
// DocumentTimeout of its size.
const ScaledTimeout time.Duration = -1

// DocumentTimeout is the default time one document may take: 2 minutes
// for the stamp and the connections, plus 1 s per MiB, so that a relay at
// 1 MiB/s (8 Mbit/s, a slow uplink) still ends. A stalled transfer fails
// sooner anyway, after protocol.RelayIdleTimeout without progress, and is
// retried.
func DocumentTimeout(size int64) time.Duration {
	return 2*time.Minute + time.Duration(max(size, 0)>>20)*time.Second
}

// Process hashes, stamps and saves the receipt of one document, then
// relays it unless the requester stamps only.
func (r *Requester) Process(ctx context.Context, path string) *Result {
	res := r.Stamp(ctx, path)
	if res.Err != nil || r.relay == nil {
		return res
	}
	r.relayDoc(ctx, res)
	return res
}

// Stamp hashes, stamps and saves the receipt of one document.
func (r *Requester) Stamp(ctx context.Context, path string) *Result {
	res := &Result{Path: path}
	f, size, err := openDocument(path)
	if err != nil {
		res.Err = err
		return res
	}
	defer f.Close()
	m := r.meter(path, StepHashing, size)
	res.Hash, err = protocol.HashReader(&countingReader{r: f, m: m})
	m.Done()
	if err != nil {
		res.Err = fmt.Errorf("cannot hash %s: %w", path, err)
		return res
	}
	maybeRead := false
	res.Receipt, res.StampTries, err = retry(ctx, "stamping "+path, r.maxTries, func() (*protocol.Receipt, error) {
		rc, err := r.stampOnce(ctx, res.Hash)
		if err == nil || ctx.Err() != nil {
			return rc, err
		}
		var dial *dialError
		switch {
		case errors.As(err, &dial):
			return nil, err
		case stamp.Classify(err) == stamp.MaybeRead:
			maybeRead = true
			return nil, err
		case stamp.Classify(err) == stamp.NotRead:
			return nil, err
		}
		return nil, backoff.Permanent(err)
	})
	if maybeRead {
		res.Warning = WarnMaybeDuplicate
	}
	if err != nil {
		res.Err = fmt.Errorf("stamping failed: %w", err)
		return res
	}
	if res.ReceiptPath, err = writeReceipt(r.receiptBase(path), res.Receipt); err != nil {
		res.Err = err
		return res
	}
	if r.witnessing != nil {
		// The v2 receipt is on disk first: a stamp whose cosignatures do
		// not come is still a stamp, and tsnode upgrade can finish it.
		w, err := r.witnessing.Upgrade(ctx, res.Receipt)
		if err != nil {
			res.Err = fmt.Errorf("%w; the unwitnessed receipt is %s (tsnode upgrade --receipt %s tries again)", err, res.ReceiptPath, res.ReceiptPath)
			return res
		}
		res.Receipt = w
		// The witnessed receipt holds all the v2 one does: it replaces it.
		if err := durable.ReplaceFile(res.ReceiptPath, w.Marshal(), 0o644); err != nil {
			res.Err = fmt.Errorf("cannot write the witnessed receipt over %s: %w", res.ReceiptPath, err)
		}
	}
	return res
}

// stampOnce asks the server once, through the session (opened again if
// it ended) or, in one-shot mode, by a one-shot exchange.
func (r *Requester) stampOnce(ctx context.Context, hash []byte) (*protocol.Receipt, error) {
	if r.oneShot {
		if err := r.dialServer(ctx); err != nil {
			return nil, err
		}
		return r.stamp.Stamp(ctx, hash)
	}
	s, err := r.openSession(ctx)
	if err != nil {
		if sessionRetry(ctx, err) == err {
			return nil, &dialError{err} // nothing was asked: safe to retry
		}
		return nil, err
	}
	st, err := s.Stamp(ctx, hash)
	if err != nil {
		return nil, err
	}
	return st.Receipt(), nil
}

// Relay relays a document whose receipt was written earlier.
func (r *Requester) Relay(ctx context.Context, path string, receipt *protocol.Receipt, receiptPath string) *Result {
	res := &Result{Path: path, Receipt: receipt, ReceiptPath: receiptPath}
	res.Hash, _ = hex.DecodeString(receipt.DocumentHash)
	if r.relay == nil {
		res.Err = errors.New("relay failed: no verifier given")
		return res
	}
	r.relayDoc(ctx, res)
	return res
}

// relayDoc relays res's document and receipt, trying again after a
// stream failure: a verifier keeps one folder per stamp, so a second
// relay of the same receipt does no harm.
func (r *Requester) relayDoc(ctx context.Context, res *Result) {
	res.relayed = true
	f, size, err := openDocument(res.Path)
	if err != nil {
		res.Err = err
		return
	}
	defer f.Close()
	var sent int64
	what := fmt.Sprintf("relaying %s to verifier %s", res.Path, r.relay.Verifier.ID)
	res.Verdict, res.RelayTries, err = retry(ctx, what, r.maxTries, func() (*protocol.Verdict, error) {
		if err := r.dialVerifier(ctx); err != nil {
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, backoff.Permanent(fmt.Errorf("cannot re-read %s: %w", res.Path, err))
		}
		m := r.meter(res.Path, StepRelaying, size)
		cr := &countingReader{r: f, m: m}
		v, err := r.relay.Relay(ctx, res.Receipt, cr, size)
		m.Done()
		sent = cr.n
		if err != nil && ctx.Err() == nil && !relay.Retryable(err) {
			return nil, backoff.Permanent(err)
		}
		return v, err
	})
	if err != nil {
		var te *TimeoutError
		if errors.As(err, &te) {
			err = fmt.Errorf("%w; %s of %s read from the document", err, FormatBytes(sent), FormatBytes(size))
		}
		res.Err = fmt.Errorf("relay failed: %w", err)
		return
	}
	if !res.Verdict.Valid() {
		res.Err = fmt.Errorf("verifier %s says %s", res.Verdict.Verifier, res.Verdict)
	}
}

// openDocument opens a regular file for reading.
func openDocument(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read document: %w", err)
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("document %s is not a regular file", path)
	}
	return f, info.Size(), nil
}

// ProcessAll processes every path, with up to the configured number of
// documents in flight over the same connections, each under its own
// timeout (0: none; ScaledTimeout: DocumentTimeout of its size). It calls
// onResult (may be nil) in the order of paths as soon as each result and
// those before it are known, and returns all results in that order.
func (r *Requester) ProcessAll(ctx context.Context, paths []string, timeout time.Duration, onResult func(*Result)) []*Result {
	results := make([]*Result, len(paths))
	done := make([]chan struct{}, len(paths))
	for i := range done {
		done[i] = make(chan struct{})
	}
	go func() {
		slots := make(chan struct{}, r.parallel)
		for i, path := range paths {
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				d := timeout
				if d == ScaledTimeout {
					d = DocumentTimeout(fileSize(path))
				}
				fileCtx, cancel := withTimeout(ctx, d)
				defer cancel()
				results[i] = r.Process(fileCtx, path)
				close(done[i])
			}()
		}
	}()
	for i := range paths {
		<-done[i]
		if onResult != nil {
			onResult(results[i])
		}
	}
	return results
}

// WithTimeout bounds ctx by d (0: not at all) for Stamp, Relay or
// Process, so that running out of it reads "timed out after d".
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return withTimeout(ctx, d)
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}
