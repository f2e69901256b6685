//go:build powercut_mutant_nosync

package outbox

// mutantNoSync: a deliberately broken build for the power-cut suite
// (test/powercut), which must report lost events. Never shipped.
const mutantNoSync = true
