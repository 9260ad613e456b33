-- cuesmith for DaVinci Resolve, in Lua: the free Resolve (21.1+) runs Lua scripts only.
-- Workspace > Scripts > cuesmith_score. Scores the selected video clips of the current timeline (all clips of
-- its video tracks when none is selected, or before Resolve 21.0.4, which cannot report the selection) with a
-- running `cuesmith serve` through `cuesmith send`, shows the progress in the console, puts the stems (or the
-- mix, CUESMITH_PLACE=mix) on new audio tracks at the first clip's record frame and the placement's markers on
-- the timeline: key moments (Green A, Yellow B, Red C) and section starts (Blue). Times and files come from
-- result.json's placement. CUESMITH_FAMILY picks the model family. Needs cuesmith_lib.lua beside it.
local function script_folder()
  local source = debug.getinfo(1, "S").source
  return source:sub(1, 1) == "@" and source:sub(2):match("^(.*[/\\])") or ""
end

local lib = dofile(script_folder() .. "cuesmith_lib.lua")

local function list(t)  -- Resolve's Lua returns lists as tables keyed 1..n (sometimes with gaps)
  local out = {}
  for _, v in pairs(t or {}) do out[#out + 1] = v end
  return out
end

local function video_items(timeline)
  local video = {}
  local all = {}
  for track = 1, timeline:GetTrackCount("video") do
    for _, item in ipairs(list(timeline:GetItemListInTrack("video", track))) do
      video[item:GetUniqueId()] = true
      all[#all + 1] = item
    end
  end
  local ok, selected = pcall(function() return timeline:GetSelectedClips() end)
  local chosen = {}
  for _, item in ipairs(ok and list(selected) or {}) do
    if video[item:GetUniqueId()] then chosen[#chosen + 1] = item end
  end
  if #chosen == 0 then chosen = all end
  table.sort(chosen, function(a, b) return a:GetStart() < b:GetStart() end)
  return chosen
end

local function clip_of(item, fps)
  local media = item:GetMediaPoolItem()
  local path = media and media:GetClipProperty("File Path")
  if type(path) == "table" then path = path["File Path"] end
  if not path or path == "" then
    error("the clip " .. tostring(item:GetName()) .. " has no media file (a generator, title or compound clip?)", 0)
  end
  local clip_fps = tonumber(media:GetClipProperty("FPS")) or fps
  local ok, source_start = pcall(function() return item:GetSourceStartFrame() end)
  local start = (ok and source_start) and source_start / clip_fps or item:GetLeftOffset() / fps
  local frames = item:GetDuration()
  return {video = path, start = start, ["end"] = start + frames / fps, record_start = item:GetStart()}
end

local function place_audio(project, timeline, audio, record_frame)
  local pool = project:GetMediaPool()
  for _, a in ipairs(audio) do
    local imported = list(pool:ImportMedia({a.path}))
    if #imported == 0 then error("Resolve could not import " .. a.path, 0) end
    timeline:AddTrack("audio", "stereo")
    local track = timeline:GetTrackCount("audio")
    local placed = pool:AppendToTimeline({{mediaPoolItem = imported[1], mediaType = 2, trackIndex = track,
                                           recordFrame = record_frame}})
    if not placed or #list(placed) == 0 then error("Resolve could not place " .. a.path, 0) end
    print(string.format("cuesmith: %s on audio track %d at frame %d", a.name, track, record_frame))
  end
end

local function add_markers(timeline, clips, fps, marks)
  local taken = {}
  for frame in pairs(timeline:GetMarkers() or {}) do taken[frame] = true end
  local start = timeline:GetStartFrame()
  for _, m in ipairs(marks) do
    local frame = math.floor(lib.timeline_position(clips, m.time, fps) + 0.5) - start
    while taken[frame] do frame = frame + 1 end  -- Resolve keeps one marker per frame
    if timeline:AddMarker(frame, lib.COLOURS[m.colour] or "Blue", m.name, m.note, 1, "cuesmith") then
      taken[frame] = true
    end
  end
end

local function main()
  local app = resolve or (Resolve and Resolve()) or (bmd and bmd.scriptapp("Resolve"))
  local project = app and app:GetProjectManager():GetCurrentProject()
  local timeline = project and project:GetCurrentTimeline()
  if not timeline then error("open a timeline first", 0) end
  local fps = tonumber(timeline:GetSetting("timelineFrameRate"))
  local clips = {}
  for i, item in ipairs(video_items(timeline)) do clips[i] = clip_of(item, fps) end
  if #clips == 0 then error("the timeline has no video clips", 0) end
  print(string.format("cuesmith: scoring %d clip(s)", #clips))
  local result, why = lib.score(clips, print)
  if not result then error(why, 0) end
  local placement = lib.placement(result)
  place_audio(project, timeline, lib.audio_to_place(placement, os.getenv("CUESMITH_PLACE")), clips[1].record_start)
  local marks = lib.markers(placement)
  add_markers(timeline, clips, fps, marks)
  print(string.format("cuesmith: done: %d marker(s); %s", #marks,
                      placement.midi and ("MIDI at " .. placement.midi) or "no MIDI (audio only)"))
end

local ok, why = pcall(main)
if not ok then
  print("cuesmith: " .. tostring(why))
  CUESMITH_FAILED = tostring(why)  -- for whoever ran the script (the tests read it)
end
