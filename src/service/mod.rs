//! Service: the slant.v1 gRPC server (owned by the service work in progress).
