//go:build !powercut_mutant_nosync

package outbox

// mutantNoSync is false in every build but the power-cut suite's mutant
// (build tag powercut_mutant_nosync), which must be caught losing events.
const mutantNoSync = false
