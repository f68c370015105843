-- Argo CD health check for portalis.dev/TranslationJob (argocd-cm key:
-- resource.customizations.health.portalis.dev_TranslationJob). Reads status.phase and the conditions the
-- operator writes.
--   Healthy      Succeeded (failed files within maxFailedItems included)
--   Degraded     Failed; or Pending because of a problem a person must fix (Planned is False: cluster not
--                found or not admitting the namespace, a Secret or the object store missing, ...)
--   Suspended    spec.suspend holds the job, or a budget holds it (BudgetHeld is True)
--   Progressing  not reconciled yet, Planning, Running (AtRisk is reported in the message)
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

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local status = obj.status
local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end

if status == nil or (status.phase == nil and status.conditions == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Portalis operator to plan the job"
  return hs
end
if status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Portalis operator to observe generation " .. generation
  return hs
end

local conditions = status.conditions
local phase = status.phase
local succeeded = condition(conditions, "Succeeded")
local failed = condition(conditions, "Failed")
local planned = condition(conditions, "Planned")
local running = condition(conditions, "Running")
local held = condition(conditions, "BudgetHeld")
local suspended = condition(conditions, "Suspended")
local at_risk = condition(conditions, "AtRisk")

if phase == "Succeeded" or is_true(succeeded) then
  hs.status = "Healthy"
  hs.message = say(succeeded, "Succeeded")
  return hs
end
if phase == "Failed" or is_true(failed) then
  hs.status = "Degraded"
  hs.message = say(failed, "Failed")
  return hs
end
if phase == "Suspended" or is_true(suspended) then
  hs.status = "Suspended"
  hs.message = say(running, "spec.suspend is true")
  return hs
end
if is_true(held) then
  hs.status = "Suspended"
  hs.message = say(held, "Held by the cluster's budget")
  return hs
end
if planned ~= nil and planned.status == "False" then
  hs.status = "Degraded"
  hs.message = say(planned, "The job cannot be planned")
  return hs
end

hs.status = "Progressing"
if phase == "Running" then
  hs.message = say(running, "Running")
else
  hs.message = say(planned, "Planning")
end
if is_true(at_risk) then
  hs.message = "At risk: " .. say(at_risk, "AtRisk") .. " " .. hs.message
end
return hs
