//! Placeholder, replaced by the criterion benches below in the next commit.
fn main() {}
