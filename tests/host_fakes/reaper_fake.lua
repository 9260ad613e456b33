-- A fake of the ReaScript API that cuesmith_score.lua (REAPER) uses, built from a scene JSON; records the
-- calls that change the project and writes them as JSON.
-- usage: lua5.4 reaper_fake.lua SCENE.json LOG.json SCRIPT.lua   (cuesmith_lib.lua beside SCRIPT)
-- Scene: {"items": [{"path", "type" ("VIDEO"|"WAVE"|"MIDI"), "position", "length", "offset", "rate",
--          "selected"}], "time_selection": [lo, hi] (optional), "tracks": N}
local scene_path, log_path, script = ...
local lib = dofile(script:match("^(.*[/\\])") .. "cuesmith_lib.lua")
local scene = lib.read_json(scene_path)
local calls = {}
local function record(...) calls[#calls + 1] = {...} end

local items, selected = {}, {}
for i, spec in ipairs(scene.items) do
  items[i] = {spec = spec, take = {spec = spec}, source = {spec = spec}}
  items[i].take.source = items[i].source
  if spec.selected then selected[#selected + 1] = items[i] end
end
local tracks, cursor, selected_track = {}, 0, nil
for i = 1, scene.tracks or 1 do tracks[i] = {name = "track " .. i} end

reaper = {}
function reaper.ShowConsoleMsg(text) io.write(text) end
function reaper.CountSelectedMediaItems(project) return #selected end
function reaper.GetSelectedMediaItem(project, i) return selected[i + 1] end
function reaper.CountMediaItems(project) return #items end
function reaper.GetMediaItem(project, i) return items[i + 1] end
function reaper.GetActiveTake(item) return item.take end
function reaper.TakeIsMIDI(take) return take.spec.type == "MIDI" end
function reaper.GetMediaItemTake_Source(take) return take.source end
function reaper.GetMediaSourceType(source, buf) return source.spec.type end
function reaper.GetMediaSourceFileName(source, buf) return source.spec.path end
function reaper.GetMediaItemInfo_Value(item, name)
  return ({D_POSITION = item.spec.position, D_LENGTH = item.spec.length})[name]
end
function reaper.GetMediaItemTakeInfo_Value(take, name)
  return ({D_STARTOFFS = take.spec.offset or 0, D_PLAYRATE = take.spec.rate or 1})[name]
end
function reaper.GetSet_LoopTimeRange2(project, set, loop, lo, hi, auto)
  local range = scene.time_selection or {0, 0}
  return range[1], range[2]
end
function reaper.GetCursorPosition() return cursor end
function reaper.SetEditCurPos(time, view, play) cursor = time end
function reaper.CountTracks(project) return #tracks end
function reaper.InsertTrackAtIndex(index, defaults)
  record("InsertTrackAtIndex", index)
  table.insert(tracks, index + 1, {name = ""})
end
function reaper.GetTrack(project, index) return tracks[index + 1] end
function reaper.GetSetMediaTrackInfo_String(track, key, value, set)
  if set and key == "P_NAME" then track.name = value end
  return true, track.name
end
function reaper.SetOnlyTrackSelected(track) selected_track = track end
function reaper.InsertMedia(path, mode)
  record("InsertMedia", path, mode, cursor, selected_track and selected_track.name or "")
  return 1
end
function reaper.ColorToNative(r, g, b) return r + 256 * g + 65536 * b end
function reaper.AddProjectMarker2(project, region, pos, region_end, name, index, colour)
  record("AddProjectMarker2", pos, name, colour)
  return #calls
end
function reaper.Undo_BeginBlock() record("Undo_BeginBlock") end
function reaper.Undo_EndBlock(name, flags) record("Undo_EndBlock", name) end
function reaper.UpdateArrange() end

dofile(script)
local f = assert(io.open(log_path, "w"))
f:write(lib.encode({calls = calls, failed = CUESMITH_FAILED, cursor = cursor}))
f:close()
