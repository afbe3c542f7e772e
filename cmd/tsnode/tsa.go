package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// tsaFlags are the server's RFC 3161 flags (PROTOCOL.md §14).
type tsaFlags struct {
	on       bool
	http     string
	key      string
	policy   string
	lifetime time.Duration
}

// minCertLifetime bounds --tsa-cert-lifetime below: shorter, the server
// would renew (and grow the past file) every few seconds. Lifetimes of
// seconds are for tests that watch a renewal.
const minCertLifetime = 10 * time.Second

const certLifetimeUsage = "a signing certificate is valid for `D`; the running server renews it when it ends within 7 days (a quarter of a shorter D), and keeps the replaced one in <keys>/public/tsa/<id>.past.pem"

func checkCertLifetime(d time.Duration) error {
	if d < minCertLifetime || d > protocol.TSARootValidity {
		return usageErr("--tsa-cert-lifetime %v: want %v to %v", d, minCertLifetime, protocol.TSARootValidity)
	}
	return nil
}

var serverTSAFlags = flagGroup{"RFC 3161", func(fs *flag.FlagSet, f *roleFlags) {
	t := f.tsaFlags()
	fs.StringVar(&t.http, "http", "", "serve RFC 3161 time-stamping over HTTP on `ADDR` (e.g. 127.0.0.1:8318; off by default): POST / and /api/v1/timestamp, GET /certchain and /api/v1/timestamp/certchain, /healthz; implies --tsa")
	fs.BoolVar(&t.on, "tsa", false, "serve RFC 3161 time-stamping to the directory's peers over libp2p ("+tsa.ProtocolID+"); every token is a leaf of the log")
	fs.StringVar(&t.key, "tsa-key", tsa.KeyECDSA, "what signs the tokens: "+tsa.KeyECDSA+" (an online key in --data, certified by the identity key) or "+tsa.KeyIdentity+" (the RSA-4096 identity key itself)")
	fs.StringVar(&t.policy, "tsa-policy", protocol.DefaultTSAPolicy, "the tokens' policy `OID`; requests naming another are refused (unacceptedPolicy)")
	fs.DurationVar(&t.lifetime, "tsa-cert-lifetime", protocol.TSALeafValidity, certLifetimeUsage)
}}

func (f *roleFlags) tsaFlags() *tsaFlags {
	if f.tsa == nil {
		f.tsa = &tsaFlags{}
	}
	return f.tsa
}

func (t *tsaFlags) check() error {
	if t == nil {
		return nil
	}
	if t.key != tsa.KeyECDSA && t.key != tsa.KeyIdentity {
		return usageErr("--tsa-key %q: want %s or %s", t.key, tsa.KeyECDSA, tsa.KeyIdentity)
	}
	if _, err := protocol.TSAPolicyDER(t.policy); err != nil {
		return usageErr("--tsa-policy: %v", err)
	}
	return checkCertLifetime(t.lifetime)
}

// options are the server's TSA options, nil when it serves none; the
// HTTP address is taken here, so that a taken one fails before start.
func (t *tsaFlags) options(keys string, tolerance time.Duration) (*node.TSAOptions, error) {
	if t == nil || !t.on && t.http == "" {
		return nil, nil
	}
	o := &node.TSAOptions{KeysDir: keys, Key: t.key, Policy: t.policy, Accuracy: tolerance, Lifetime: t.lifetime}
	if t.http != "" {
		ln, err := tsa.ListenHTTP(t.http)
		if err != nil {
			return nil, err
		}
		o.HTTP = ln
	}
	return o, nil
}

// cmdTSA runs tsnode tsa cert.
func cmdTSA(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "cert" {
		return usageErr("tsnode tsa: want the subcommand cert")
	}
	fl := newFlags("tsnode tsa cert", stderr)
	idFlag := fl.String("id", string(identity.ServerID), "the authority's `ID`")
	keys := fl.String("keys", defaultKeysDir, "keys directory `DIR`: the chain goes to DIR/public/tsa/<id>.chain.pem and the root to DIR/public/tsa/<id>.root.pem")
	data := fl.String("data", node.DefaultDataDir, "the server's data directory `DIR` (holding its log): the ECDSA signing key goes to DIR/tsa-signing-key.pem (0600)")
	key := fl.String("tsa-key", tsa.KeyECDSA, "what signs the tokens: "+tsa.KeyECDSA+" or "+tsa.KeyIdentity)
	lifetime := fl.Duration("tsa-cert-lifetime", protocol.TSALeafValidity, certLifetimeUsage)
	passFile := fl.String("passphrase-file", "", "read the identity key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	mode := addKeyModeFlag(fl, stderr)
	pos, err := parseInterspersed(fl, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("tsa cert takes no arguments, got %q", pos)
	}
	id, err := identity.ParseID(*idFlag)
	if err != nil {
		return usageErr("--id: %v", err)
	}
	if err := checkCertLifetime(*lifetime); err != nil {
		return err
	}
	// The signing key goes next to the log: a data directory without
	// one would no longer be empty, and the server would not create it.
	if _, err := os.Stat(filepath.Join(*data, "log.db")); errors.Is(err, fs.ErrNotExist) && *key == tsa.KeyECDSA {
		return fmt.Errorf("%s holds no log: start the server once first (it makes the RFC 3161 keys itself with --tsa or --http)", *data)
	}
	pass, err := readPassphrase(*passFile, false, mode)
	if err != nil {
		return err
	}
	priv, err := identity.LoadPrivateKey(identity.PrivateKeyPath(*keys, id), pass, mode.allowInsecure())
	if err != nil {
		return mode.explain(err)
	}
	certs := &tsa.Config{KeysDir: *keys, DataDir: *data, ID: id, Key: priv, Mode: *key, Lifetime: *lifetime}
	k, err := certs.Ensure(time.Now())
	if err != nil {
		return err
	}
	for _, p := range k.Made {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	fmt.Fprintf(stdout, "signing certificate %s valid until %s\nroot %s (the identity key of %s) valid until %s\nchain %s\n",
		k.Cert.Subject.CommonName, k.Cert.NotAfter.UTC().Format(time.RFC3339), k.Root.Subject.CommonName, id,
		k.Root.NotAfter.UTC().Format(time.RFC3339), tsa.ChainPath(*keys, id))
	return nil
}
