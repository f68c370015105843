"""The data plane: translation workers that pull items from the queue and write outputs to S3."""
