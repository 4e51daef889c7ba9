// Methods that exist only in the test binaries: tiny, fast, with hooks that tests need.
#pragma once

namespace onestep::test {

// "test-regress": a small MLP regressing a fixed linear map of toy points plus fresh noise,
// with an EMA copy, dropout (so the random stream matters), optional per-step sleep and
// injected non-finite losses. "test-deterministic": the same regression without noise or
// dropout, so a step depends on nothing but the weights and the batch.
void register_test_methods();

}  // namespace onestep::test
