"""The Alertmanager webhook payload (version 4), as ``POST /alerts`` receives it.

This is the edge where alerts enter the operator: the webhook receiver validates every request body against
these models and answers 400 when it does not fit, so the GPU health policy only ever sees well-formed alerts.
Labels and annotations must be maps of strings to strings (Alertmanager never sends anything else); fields this
model does not name are ignored, so a newer Alertmanager keeps working.

Reference: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

MAX_ALERTS = 1000  # Alertmanager's max_alerts; a larger group is truncated by Alertmanager itself
MAX_LABELS = 256

LabelMap = Annotated[dict[StrictStr, StrictStr], Field(max_length=MAX_LABELS)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Alert(_Wire):
    """One alert of a notification: its labels name the GPU and the node; annotations carry the summary."""

    status: Literal["firing", "resolved"]
    labels: LabelMap
    annotations: LabelMap = Field(default_factory=dict)
    starts_at: StrictStr = Field(default="", alias="startsAt")
    ends_at: StrictStr = Field(default="", alias="endsAt")
    generator_url: StrictStr = Field(default="", alias="generatorURL")
    fingerprint: StrictStr = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class WebhookPayload(_Wire):
    """One notification: a group of alerts that share the route's ``group_by`` labels."""

    version: StrictStr = "4"
    group_key: StrictStr = Field(default="", alias="groupKey")
    truncated_alerts: StrictInt = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"] = "firing"
    receiver: StrictStr = ""
    group_labels: LabelMap = Field(default_factory=dict, alias="groupLabels")
    common_labels: LabelMap = Field(default_factory=dict, alias="commonLabels")
    common_annotations: LabelMap = Field(default_factory=dict, alias="commonAnnotations")
    external_url: StrictStr = Field(default="", alias="externalURL")
    alerts: Annotated[list[Alert], Field(max_length=MAX_ALERTS)]
