-- A fake of Resolve's Lua scripting objects for cuesmith_score_lua.lua, built from the same scene JSON as
-- DaVinciResolveScript.py; records the calls that change the project and writes them as JSON.
-- usage: lua5.4 resolve_fake.lua SCENE.json LOG.json SCRIPT.lua   (cuesmith_lib.lua beside SCRIPT)
local scene_path, log_path, script = ...
local lib = dofile(script:match("^(.*[/\\])") .. "cuesmith_lib.lua")
local scene = lib.read_json(scene_path)
local calls = {}
local function record(...) calls[#calls + 1] = {...} end

local function media_item(path, fps)
  return {path = path, GetClipProperty = function(self, name)
    return ({["File Path"] = self.path, FPS = tostring(fps)})[name] or ""
  end}
end

local function timeline_item(spec)
  local item = {spec = spec, media = media_item(spec.path, spec.clip_fps or scene.fps)}
  function item:GetName() return self.spec.name end
  function item:GetUniqueId() return self.spec.id end
  function item:GetStart() return self.spec.start end
  function item:GetDuration() return self.spec.duration end
  function item:GetLeftOffset() return self.spec.left_offset end
  function item:GetSourceStartFrame() return self.spec.source_start end
  function item:GetMediaPoolItem() return self.media end
  return item
end

local tracks = {}
for t, specs in ipairs(scene.tracks) do
  tracks[t] = {}
  for i, spec in ipairs(specs) do tracks[t][i] = timeline_item(spec) end
end

local timeline = {audio_tracks = scene.audio_tracks or 1, markers = {}}
function timeline:GetSetting(name) return tostring(scene.fps) end
function timeline:GetStartFrame() return scene.start_frame end
function timeline:GetTrackCount(kind) return kind == "video" and #tracks or self.audio_tracks end
function timeline:GetItemListInTrack(kind, index) return kind == "video" and tracks[index] or {} end
function timeline:AddTrack(kind, sub_type)
  record("AddTrack", kind, sub_type)
  if kind == "audio" then self.audio_tracks = self.audio_tracks + 1 end
  return true
end
function timeline:GetMarkers() return self.markers end
function timeline:AddMarker(frame, colour, name, note, duration, custom)
  record("AddMarker", frame, colour, name, note, duration, custom)
  if self.markers[frame] then return false end
  self.markers[frame] = {name = name}
  return true
end
if scene.selected then
  function timeline:GetSelectedClips()
    local chosen = {}
    for _, track in ipairs(tracks) do
      for _, item in ipairs(track) do
        for _, id in ipairs(scene.selected) do
          if item:GetUniqueId() == id then chosen[#chosen + 1] = item end
        end
      end
    end
    return chosen
  end
end

local pool = {}
function pool:ImportMedia(paths)
  record("ImportMedia", paths)
  local items = {}
  for i, p in ipairs(paths) do items[i] = media_item(p, scene.fps) end
  return items
end
function pool:AppendToTimeline(clips)
  local infos = {}
  for i, c in ipairs(clips) do
    infos[i] = {mediaPoolItem = c.mediaPoolItem.path, mediaType = c.mediaType, trackIndex = c.trackIndex,
                recordFrame = c.recordFrame}
    if c.trackIndex > timeline.audio_tracks then record("AppendToTimeline", infos); return {} end
  end
  record("AppendToTimeline", infos)
  return {{}}
end

local project = {}
function project:GetCurrentTimeline() return timeline end
function project:GetMediaPool() return pool end
resolve = {}
function resolve:GetProjectManager() return {GetCurrentProject = function() return project end} end

dofile(script)
local f = assert(io.open(log_path, "w"))
f:write(lib.encode({calls = calls, failed = CUESMITH_FAILED}))
f:close()
