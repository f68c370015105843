-- Argo CD health check for portalis.dev/TranslationCluster (argocd-cm key:
-- resource.customizations.health.portalis.dev_TranslationCluster). Reads only the status the operator writes:
-- observedGeneration and the Ready, Degraded, Suspended and BudgetExceeded conditions.
--   Suspended    spec.suspend is true, or the budget ran out under onExceeded: Suspend
--   Degraded     Degraded is True (InsufficientGPUs, WorkersFailing, QueueUnavailable,
--                BackendRefused, ...), or a budget is exceeded
--   Healthy      Ready is True
--   Progressing  everything else: not reconciled yet, creating, head or workers not ready
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function say(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Portalis operator to reconcile the cluster"
  return hs
end
if status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Portalis operator to observe generation " .. generation
  return hs
end

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")
local suspended = condition(status.conditions, "Suspended")
local exceeded = condition(status.conditions, "BudgetExceeded")

if (suspended ~= nil and suspended.status == "True") or (obj.spec ~= nil and obj.spec.suspend == true) then
  hs.status = "Suspended"
  hs.message = say(suspended, "spec.suspend is true")
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = say(degraded, "Degraded")
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason == "InsufficientGPUs" then
  hs.status = "Degraded"
  hs.message = say(ready, "InsufficientGPUs")
  return hs
end
if exceeded ~= nil and exceeded.status == "True" then
  local action = nil
  if obj.spec ~= nil and obj.spec.budget ~= nil then
    action = obj.spec.budget.onExceeded
  end
  if action == "Suspend" then
    hs.status = "Suspended"
  else
    hs.status = "Degraded"
  end
  hs.message = say(exceeded, "BudgetExceeded")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = say(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = say(ready, "Waiting for the cluster to become Ready")
return hs
