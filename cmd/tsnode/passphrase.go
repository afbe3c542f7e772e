package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/tsnode/tsnode/identity"
)

// passphraseEnv names the environment variable that may hold the
// passphrase. It is read, never echoed or logged.
const passphraseEnv = "TSNODE_PASSPHRASE"

// keyMode is --allow-insecure-key-mode: whether a private key or
// passphrase file readable by group or others is used anyway. A nil
// *keyMode refuses such files, with no flag to mention.
type keyMode struct {
	allow  bool
	stderr io.Writer
}

func addKeyModeFlag(fs *flag.FlagSet, stderr io.Writer) *keyMode {
	m := &keyMode{stderr: stderr}
	fs.BoolVar(&m.allow, "allow-insecure-key-mode", false, "use a private key or --passphrase-file readable by group or others anyway, with a warning (default: refuse it)")
	return m
}

// allowInsecure is what identity.ReadSecretFile takes: nil refuses.
func (m *keyMode) allowInsecure() func(string) {
	if m == nil || !m.allow {
		return nil
	}
	return func(w string) {
		fmt.Fprintf(m.stderr, "tsnode: WARNING: %s; --allow-insecure-key-mode uses it anyway, but whoever can read it may sign as this node\n", w)
	}
}

// explain adds the way out to a refusal of a file's mode.
func (m *keyMode) explain(err error) error {
	if m != nil && errors.Is(err, identity.ErrInsecureMode) {
		return fmt.Errorf("%w (or start anyway with --allow-insecure-key-mode)", err)
	}
	return err
}

// readPassphrase takes the passphrase from --passphrase-file, then
// $TSNODE_PASSPHRASE, then a no-echo prompt on the terminal. confirm asks
// twice (for keygen). The passphrase itself never appears in an error.
func readPassphrase(file string, confirm bool, mode *keyMode) ([]byte, error) {
	if file != "" {
		b, err := identity.ReadSecretFile("passphrase file", file, mode.allowInsecure())
		if err != nil {
			return nil, mode.explain(err)
		}
		// One trailing newline is what `echo` and editors add.
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("passphrase file %s is empty", file)
		}
		return b, nil
	}
	if v, ok := os.LookupEnv(passphraseEnv); ok {
		if v == "" {
			return nil, fmt.Errorf("$%s is set but empty", passphraseEnv)
		}
		return []byte(v), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		return nil, errors.New("no passphrase: give --passphrase-file FILE, set " + passphraseEnv + ", or run in a terminal to be prompted")
	}
	defer tty.Close()
	p, err := prompt(tty, "Passphrase: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := prompt(tty, "Passphrase again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the passphrases do not match")
		}
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	return p, nil
}

func prompt(tty *os.File, label string) ([]byte, error) {
	fmt.Fprint(tty, label)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("failed to read passphrase: %w", err)
	}
	return p, nil
}
