-- cuesmith for REAPER (Actions > Load ReaScript > cuesmith_score.lua; needs cuesmith_lib.lua beside it).
-- Scores the selected video items (or, with none selected, the video items under the time selection, cut to
-- it) with a running `cuesmith serve` through `cuesmith send`, then inserts the MIDI of the first variation (when
-- the family writes one) and the stems (or the mix, CUESMITH_PLACE=mix) on new tracks at the first clip's
-- position, and the placement's markers as project markers: key moments (green A, yellow B, red C) and section
-- starts (blue). Times and files come from result.json's placement; CUESMITH_FAMILY picks the model family.
-- REAPER runs a script on its main thread, so the
-- console shows the job's progress when the job ends; the job itself runs in the engine.
local function script_folder()
  local source = debug.getinfo(1, "S").source
  return source:sub(1, 1) == "@" and source:sub(2):match("^(.*[/\\])") or ""
end

local lib = dofile(script_folder() .. "cuesmith_lib.lua")
local RGB = {green = {40, 180, 60}, yellow = {230, 200, 40}, red = {210, 50, 40}, blue = {60, 110, 220}}

local function say(text)
  reaper.ShowConsoleMsg(text .. "\n")
end

local function video_source(item)
  local take = item and reaper.GetActiveTake(item)
  if not take or reaper.TakeIsMIDI(take) then return nil end
  local source = reaper.GetMediaItemTake_Source(take)
  if reaper.GetMediaSourceType(source, "") ~= "VIDEO" then return nil end
  return take, reaper.GetMediaSourceFileName(source, "")
end

-- The clip of `item` between record times lo and hi (seconds), or nil when it is not a video item.
local function clip_of(item, lo, hi)
  local take, path = video_source(item)
  if not take then return nil end
  local position = reaper.GetMediaItemInfo_Value(item, "D_POSITION")
  local length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local first, last = math.max(position, lo or position), math.min(position + length, hi or position + length)
  if last <= first then return nil end
  local offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
  local rate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE")
  return {video = path, start = offset + (first - position) * rate, ["end"] = offset + (last - position) * rate,
          record_start = first}
end

local function chosen_clips()
  local clips = {}
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do
    clips[#clips + 1] = clip_of(reaper.GetSelectedMediaItem(0, i))
  end
  if #clips == 0 then
    local lo, hi = reaper.GetSet_LoopTimeRange2(0, false, false, 0, 0, false)
    if hi <= lo then error("select video items, or make a time selection over them", 0) end
    for i = 0, reaper.CountMediaItems(0) - 1 do
      clips[#clips + 1] = clip_of(reaper.GetMediaItem(0, i), lo, hi)
    end
  end
  table.sort(clips, function(a, b) return a.record_start < b.record_start end)
  if #clips == 0 then error("no video items selected or under the time selection", 0) end
  return clips
end

local function insert_on_new_track(name, path, position)
  local index = reaper.CountTracks(0)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  reaper.SetOnlyTrackSelected(track)
  reaper.SetEditCurPos(position, false, false)
  if reaper.InsertMedia(path, 0) == 0 then error("REAPER could not insert " .. path, 0) end
  say(string.format("cuesmith: %s on track %d at %.3f s", name, index + 1, position))
end

local function main()
  local clips = chosen_clips()
  say(string.format("cuesmith: scoring %d clip(s)", #clips))
  local result, why = lib.score(clips, say)
  if not result then error(why, 0) end
  local placement = lib.placement(result)
  local cursor = reaper.GetCursorPosition()
  local start = clips[1].record_start
  reaper.Undo_BeginBlock()
  if placement.midi then insert_on_new_track("cuesmith MIDI", placement.midi, start) end
  for _, a in ipairs(lib.audio_to_place(placement, os.getenv("CUESMITH_PLACE"))) do
    insert_on_new_track("cuesmith " .. a.name, a.path, start)
  end
  local marks = lib.markers(placement)
  for _, m in ipairs(marks) do
    local rgb = RGB[m.colour] or RGB.blue
    reaper.AddProjectMarker2(0, false, lib.timeline_position(clips, m.time, 1), 0, m.name .. ": " .. m.note, -1,
                             reaper.ColorToNative(rgb[1], rgb[2], rgb[3]) + 0x1000000)
  end
  reaper.SetEditCurPos(cursor, false, false)
  reaper.Undo_EndBlock("cuesmith: score", -1)
  reaper.UpdateArrange()
  say(string.format("cuesmith: done: %d marker(s)", #marks))
end

local ok, why = pcall(main)
if not ok then
  say("cuesmith: " .. tostring(why))
  CUESMITH_FAILED = tostring(why)  -- for whoever ran the script (the tests read it)
end
