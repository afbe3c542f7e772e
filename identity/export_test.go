package identity

// SetMaxPBKDF2Iterations lowers the iteration bound for a test (fuzzing
// cannot afford seconds per input) and returns the function restoring it.
func SetMaxPBKDF2Iterations(n int) (restore func()) {
	old := maxPBKDF2Iterations
	maxPBKDF2Iterations = n
	return func() { maxPBKDF2Iterations = old }
}

// MaxPBKDF2Iterations is the bound in force.
func MaxPBKDF2Iterations() int { return maxPBKDF2Iterations }
