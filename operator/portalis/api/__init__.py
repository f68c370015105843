"""The Portalis API: versioned pydantic models of the custom resources and the CRD generator built on them.

Nothing here does I/O or imports kopf, kubernetes, redis or boto3; every other layer may import it.
"""
