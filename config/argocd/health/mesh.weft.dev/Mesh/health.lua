-- Argo CD health check for mesh.weft.dev/Mesh and the Istio kinds weftd writes status on
-- (networking.istio.io, security.istio.io), kstatus semantics: the same conditions on both.
-- Install: resource.customizations.health.<group>_<kind> in argocd-cm (see
-- config/argocd/argocd-cm.yaml), or bundle as resource_customizations/mesh.weft.dev/Mesh/.
-- A stale status (observedGeneration behind metadata.generation) is Progressing, never Healthy:
-- a Ready=True left over from before a spec edit must not release the next sync wave.
local hs = {}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = "Pending deletion; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  if obj.kind == "Mesh" then
    hs.message = "Waiting for the weft operator to observe this Mesh"
  else
    hs.message = "Waiting for weftd to observe this " .. (obj.kind or "object")
  end
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for generation " .. obj.metadata.generation .. " to be observed (observed " .. obj.status.observedGeneration .. ")"
  return hs
end
local ready, stalled, reconciling = nil, nil, nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    elseif c.type == "Stalled" then
      stalled = c
    elseif c.type == "Reconciling" then
      reconciling = c
    end
  end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message or reconciling.reason or "Reconciling"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
hs.status = "Progressing"
hs.message = (ready ~= nil and ready.message) or ("Waiting for " .. (obj.kind or "object") .. " to become Ready")
return hs
