-- Argo CD health check for procon.dev/ProcessorConnection.
--
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and a
-- safe os library: no string library, so only `..` and tostring() here.
-- It reads what the operator writes, in the order kstatus does, so Argo CD
-- and Flux agree on every connection:
--   being deleted                               -> Progressing
--   annotated procon.dev/paused: "true"         -> Suspended (Argo CD only;
--                                                  kstatus has no such state)
--   no status yet, or an older generation seen  -> Progressing
--   Stalled=True (only a person can fix it)     -> Degraded
--   Reconciling=True (work or retries going on) -> Progressing
--   Ready=True                                  -> Healthy
--   anything else                               -> Progressing
local hs = {}

local function find(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == type then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  local text = tostring(condition.reason or "")
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. tostring(condition.message)
  end
  return text
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: waiting for the operator's clean-up (the webhook, per deletionPolicy)"
  return hs
end

-- Paused: the operator makes no calls and writes no status, so what status
-- says is as old as the pause.
if obj.metadata ~= nil and obj.metadata.annotations ~= nil and obj.metadata.annotations["procon.dev/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Paused (procon.dev/paused): the operator leaves this connection and its webhook alone"
  return hs
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on the connection"
  return hs
end

local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local stalled = find(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = find(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = find(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  -- A Ready condition written for an older generation is not news about this one.
  if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
