"""All I/O: the Kubernetes API, the Redis queue, the S3 store and alert inputs."""

# Blocking calls run on at most this many threads (the operator's default executor). Every connection pool holds
# as many connections: a smaller pool discards a connection whenever more calls are in flight, and the next call
# pays a new TCP and TLS handshake (loading the CA bundle each time), which at fleet scale cost a tenth of the
# operator's CPU.
IO_THREADS = 64
