package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// Requester gets documents stamped and relays them to a verifier, over one
// connection to each.
type Requester struct {
	host     host.Host
	id       *Identity
	oneShot  bool
	trust    *protocol.Trust
	session  *stamp.Session
	stamp    *stamp.OneShotClient
	relay    *relay.Client
	server   peer.AddrInfo
	verifier peer.AddrInfo
	outDir   string
	parallel int
}

// RequesterConfig says whom a requester talks to.
type RequesterConfig struct {
	ServerID   identity.ID
	ServerAddr string // multiaddr, /p2p/ optional
	// Trust decides whose signatures count; ServerID must be one of its
	// authorities. Required.
	Trust        *protocol.Trust
	VerifierID   identity.ID
	VerifierAddr string
	// OutDir receives receipts; empty means next to each document.
	OutDir string
	// Listen addresses; usually none.
	Listen []string
	// OneShot uses the prototype-style flow: one sealed exchange and one
	// server signature per document (v1 receipts) instead of a session.
	OneShot bool
	// Parallel is how many documents ProcessAll keeps in flight; 0 means
	// DefaultParallel.
	Parallel int
}

// DefaultParallel is how many documents a requester stamps and relays at
// once: enough for the server to sign one tree head per group of them.
const DefaultParallel = 8

// NewRequester starts a dial-only host for id.
func NewRequester(id *Identity, cfg RequesterConfig) (*Requester, error) {
	if cfg.Trust == nil {
		return nil, errors.New("requester: no trust policy (RequesterConfig.Trust)")
	}
	// Refuse before anything is stamped: the server's signatures could
	// never be accepted.
	if err := cfg.Trust.CheckAuthority(cfg.ServerID); err != nil {
		return nil, fmt.Errorf("--server-id: %w", err)
	}
	server, serverInfo, err := ResolvePeer(id.Dir, cfg.ServerID, cfg.ServerAddr, id.Retired...)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	verifier, verifierInfo, err := ResolvePeer(id.Dir, cfg.VerifierID, cfg.VerifierAddr, id.Retired...)
	if err != nil {
		return nil, fmt.Errorf("--verifier: %w", err)
	}
	h, err := NewHost(id, cfg.Listen)
	if err != nil {
		return nil, err
	}
	return &Requester{
		host:     h,
		id:       id,
		oneShot:  cfg.OneShot,
		trust:    cfg.Trust,
		stamp:    &stamp.OneShotClient{Host: h, Key: id.Key, Self: id.Self, Server: server, Trust: cfg.Trust},
		relay:    relay.NewClient(h, id.Self, verifier),
		server:   serverInfo,
		verifier: verifierInfo,
		outDir:   cfg.OutDir,
		parallel: cmp.Or(max(cfg.Parallel, 0), DefaultParallel),
	}, nil
}

// Host is the requester's libp2p host.
func (r *Requester) Host() host.Host { return r.host }

// Close ends the session and stops the requester's host.
func (r *Requester) Close() error {
	if r.session != nil {
		r.session.Close()
	}
	return r.host.Close()
}

// Connect dials the server and the verifier, and opens the stamp session
// all documents share.
func (r *Requester) Connect(ctx context.Context) error {
	if err := r.host.Connect(ctx, r.server); err != nil {
		return fmt.Errorf("cannot reach server %s at %v: %w", r.stamp.Server.ID, r.server.Addrs, ExplainDialError(err, r.stamp.Server.ID))
	}
	if err := r.host.Connect(ctx, r.verifier); err != nil {
		return fmt.Errorf("cannot reach verifier %s at %v: %w", r.relay.Verifier.ID, r.verifier.Addrs, ExplainDialError(err, r.relay.Verifier.ID))
	}
	if r.oneShot {
		return nil
	}
	s, err := stamp.OpenSession(ctx, r.host, r.id.Key, r.id.Self, r.stamp.Server, r.trust, nil)
	if err != nil {
		return err
	}
	r.session = s
	return nil
}

// stampHash gets a hash stamped by the session or, in one-shot mode, by
// a one-shot exchange.
func (r *Requester) stampHash(ctx context.Context, hash []byte) (*protocol.Receipt, error) {
	if r.session == nil {
		return r.stamp.Stamp(ctx, hash)
	}
	st, err := r.session.Stamp(ctx, hash)
	if err != nil {
		return nil, err
	}
	return st.Receipt(), nil
}

// Result is what happened to one document. Err is the first step that
// failed; the fields before it are filled in.
type Result struct {
	Path        string
	Hash        []byte
	Receipt     *protocol.Receipt
	ReceiptPath string
	Verdict     *protocol.Verdict
	Err         error
}

// OK reports whether every step succeeded and the verifier said valid.
func (res *Result) OK() bool { return res.Err == nil && res.Verdict != nil && res.Verdict.Valid() }

// Process hashes, stamps, saves the receipt of, and relays one document.
func (r *Requester) Process(ctx context.Context, path string) *Result {
	res := &Result{Path: path}
	f, err := os.Open(path)
	if err != nil {
		res.Err = fmt.Errorf("cannot read document: %w", err)
		return res
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		res.Err = fmt.Errorf("document %s is not a regular file", path)
		return res
	}
	if res.Hash, err = protocol.HashReader(f); err != nil {
		res.Err = fmt.Errorf("cannot hash %s: %w", path, err)
		return res
	}
	if res.Receipt, err = r.stampHash(ctx, res.Hash); err != nil {
		res.Err = fmt.Errorf("stamping failed: %w", err)
		return res
	}
	if res.ReceiptPath, err = writeReceipt(r.receiptBase(path), res.Receipt); err != nil {
		res.Err = err
		return res
	}
	if _, err := f.Seek(0, 0); err != nil {
		res.Err = fmt.Errorf("cannot re-read %s: %w", path, err)
		return res
	}
	if res.Verdict, err = r.relay.Relay(ctx, res.Receipt, f, info.Size()); err != nil {
		res.Err = fmt.Errorf("relay failed: %w", err)
		return res
	}
	if !res.Verdict.Valid() {
		res.Err = fmt.Errorf("verifier %s says %s", res.Verdict.Verifier, res.Verdict)
	}
	return res
}

// ProcessAll processes every path, with up to the configured number of
// documents in flight over the same connections, each under its own
// timeout (0: none). It calls onResult (may be nil) in the order of
// paths as soon as each result and those before it are known, and
// returns all results in that order.
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
				fileCtx, cancel := ctx, context.CancelFunc(func() {})
				if timeout > 0 {
					fileCtx, cancel = context.WithTimeout(ctx, timeout)
				}
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

func (r *Requester) receiptBase(doc string) string {
	if r.outDir == "" {
		return doc
	}
	return filepath.Join(r.outDir, filepath.Base(doc))
}

// writeReceipt writes <base>.receipt, or <base>.N.receipt when that
// exists: an earlier receipt is never overwritten.
func writeReceipt(base string, rc *protocol.Receipt) (string, error) {
	data := rc.Marshal()
	for n := 0; n < 1000; n++ {
		path := base + ".receipt"
		if n > 0 {
			path = fmt.Sprintf("%s.%d.receipt", base, n)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cannot write receipt: %w", err)
		}
		_, werr := f.Write(data)
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return "", fmt.Errorf("cannot write receipt %s: %w", path, werr)
		}
		return path, nil
	}
	return "", fmt.Errorf("cannot write receipt: %s.receipt and 999 numbered ones exist", strings.TrimSuffix(base, "/"))
}
