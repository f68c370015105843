"""All I/O: the Kubernetes API, the Redis queue, the S3 store and alert inputs."""
