package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"
)

// passphraseEnv names the environment variable that may hold the
// passphrase. It is read, never echoed or logged.
const passphraseEnv = "TSNODE_PASSPHRASE"

// readPassphrase takes the passphrase from --passphrase-file, then
// $TSNODE_PASSPHRASE, then a no-echo prompt on the terminal. confirm asks
// twice (for keygen). The passphrase itself never appears in an error.
func readPassphrase(file string, confirm bool) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("failed to read passphrase file: %w", err)
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
