-- Pharos' Lua toolbox: the helper functions Orthanc's Lua API defines in Lua itself,
-- written for Pharos (same names, arguments and observable behaviour as Orthanc's
-- OrthancServer/Resources/Toolbox.lua, which is not copied here).

-- PrintRecursive(value, [limit], [indent]): print a value, and the content of tables
-- one "[key]" level per line, stopping after `limit` items (100 by default). Returns
-- the items left. Orthanc's print() joins its arguments with ", " only once something
-- has been written, hence "table" (not ", table") for the top-level line.
function PrintRecursive(value, limit, indent)
   limit = limit or 100
   indent = indent or ""
   if limit < 1 then
      print("ERROR: Item limit reached.")
      return limit - 1
   end
   local kind = type(value)
   if kind ~= "table" then
      print(indent, kind, value)
      return limit - 1
   end
   print(indent, kind)
   for key, item in pairs(value) do
      limit = PrintRecursive(item, limit, indent .. "\t[" .. tostring(key) .. "]")
      if limit < 0 then
         break
      end
   end
   return limit
end


-- The operations that the routing functions below queue while one callback runs; the
-- server turns them into one job when the callback returns (cf. LuaJobManager).
function _InitializeJob()
   _job = {}
end

function _AccessJob()
   return _job
end

local function queue(operation)
   table.insert(_job, operation)
end


-- SendToModality(instance, modality, [localAet]): C-STORE to a DicomModalities entry.
-- Returns the instance so that calls chain: Delete(SendToModality(id, 'pacs')).
function SendToModality(resourceId, modality, localAet)
   if resourceId == nil then
      error("Cannot send a nonexistent resource")
   end
   queue({ Operation = "store-scu", Resource = resourceId,
           Modality = modality, LocalAet = localAet })
   return resourceId
end

-- SendToPeer(instance, peer): POST the instance to an OrthancPeers entry.
function SendToPeer(resourceId, peer)
   if resourceId == nil then
      error("Cannot send a nonexistent resource")
   end
   queue({ Operation = "store-peer", Resource = resourceId, Peer = peer })
   return resourceId
end

-- Delete(instance): remove the instance; returns nil so that nothing chains after it.
function Delete(resourceId)
   if resourceId == nil then
      error("Cannot delete a nonexistent resource")
   end
   queue({ Operation = "delete", Resource = resourceId })
   return nil
end

-- ModifyResource/ModifyInstance(instance, replacements, removals, removePrivateTags):
-- store a modified copy. Returns "", the marker that makes the next operation take
-- the modified copy (the output of this one) as its input.
function ModifyResource(resourceId, replacements, removals, removePrivateTags)
   if resourceId == nil then
      error("Cannot modify a nonexistent resource")
   end
   if resourceId == "" then
      error("Cannot modify twice an resource")
   end
   queue({ Operation = "modify", Resource = resourceId, Replace = replacements,
           Remove = removals, RemovePrivateTags = removePrivateTags })
   return ""
end

function ModifyInstance(resourceId, replacements, removals, removePrivateTags)
   return ModifyResource(resourceId, replacements, removals, removePrivateTags)
end

-- CallSystem(instance, command, args): run a program with the arguments, then the
-- path of a temporary copy of the instance's file.
function CallSystem(resourceId, command, args)
   if resourceId == nil then
      error("Cannot execute a system call on a nonexistent resource")
   end
   if command == nil then
      error("No command was specified for system call")
   end
   queue({ Operation = "call-system", Resource = resourceId,
           Command = command, Arguments = args })
   return resourceId
end

print("Lua toolbox installed")
