//! Policy tests with real CSRs (rcgen at test time, committed openssl fixtures).
