-- cuesmith_lib.lua: what the Resolve and Reaper Lua scripts share (installed next to each of them).
--
-- Lua in Resolve and Reaper has no sockets, so a request goes through `cuesmith send`, run with io.popen;
-- it prints one JSON line per reply ({"reply": "accepted"|"error", "job_id", "code", "message"}) and per job
-- event ({"event": "progress"|"result"|"failed"|"cancelled", "job_id", "stage", "fraction", "kind", "result",
-- "message"}). Also here: a small JSON codec
-- (neither host ships one), what to place from result.json's `placement` (schema version 2: every time in
-- seconds of the score, the audio files, the markers with their colours and notes) and the mapping from
-- score time to timeline time. Written for Lua 5.1 (Resolve's LuaJIT) through 5.4 (Reaper).
local M = {}

M.BIN = "@CUESMITH_BIN@"  -- `cuesmith hosts install` writes the cuesmith command's path here
M.MAX_INLINE_JSON = 1400  -- docs/osc.md: longer requests travel as a .json file path
M.COLOURS = {green = "Green", yellow = "Yellow", red = "Red", blue = "Blue"}  -- placement -> Resolve
M.FINAL = {result = true, failed = true, cancelled = true, error = true}

local WINDOWS = package.config:sub(1, 1) == "\\"

-- JSON ------------------------------------------------------------------------------------------

local function encode_string(s)
  local escapes = {['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n > 0 and n == #t
end

function M.encode(value)
  local kind = type(value)
  if kind == "string" then return encode_string(value) end
  if kind == "boolean" then return tostring(value) end
  if kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then error("JSON cannot hold " .. value) end
    if value == math.floor(value) and math.abs(value) < 2 ^ 53 then return string.format("%.0f", value) end
    return string.format("%.10g", value)
  end
  if kind == "nil" then return "null" end
  if kind ~= "table" then error("JSON cannot hold a " .. kind) end
  local parts = {}
  if is_array(value) then
    for i = 1, #value do parts[i] = M.encode(value[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = encode_string(k) .. ":" .. M.encode(value[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function utf8_char(code)
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then return string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64) end
  return string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
end

local decode_value

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then error("unterminated JSON string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local simple = {b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}
      if e == "u" then
        local code = tonumber(s:sub(j + 2, j + 5), 16)
        if not code then error("bad \\u escape in JSON") end
        if code >= 0xD800 and code <= 0xDBFF and s:sub(j + 6, j + 7) == "\\u" then  -- a surrogate pair
          local low = tonumber(s:sub(j + 8, j + 11), 16) or 0xDC00
          code, j = 0x10000 + (code - 0xD800) * 1024 + (low - 0xDC00), j + 6
          out[#out + 1] = string.char(0xF0 + math.floor(code / 262144), 0x80 + math.floor(code / 4096) % 64,
                                      0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
        else
          out[#out + 1] = utf8_char(code)
        end
        j = j + 6
      else
        out[#out + 1] = simple[e] or e
        j = j + 2
      end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
end

local function decode_list(s, i, close, item)
  local result, n = {}, 0
  i = skip(s, i + 1)
  if s:sub(i, i) == close then return result, i + 1 end
  while true do
    n = n + 1
    i = item(result, n, i)
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == close then return result, i + 1 end
    if c ~= "," then error("expected ',' or '" .. close .. "' at " .. i .. " of the JSON") end
    i = skip(s, i + 1)
  end
end

decode_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    return decode_list(s, i, "}", function(t, _, j)
      if s:sub(j, j) ~= '"' then error("expected a key at " .. j .. " of the JSON") end
      local key
      key, j = decode_string(s, j)
      j = skip(s, j)
      if s:sub(j, j) ~= ":" then error("expected ':' at " .. j .. " of the JSON") end
      t[key], j = decode_value(s, j + 1)
      return j
    end)
  elseif c == "[" then
    return decode_list(s, i, "]", function(t, n, j)
      t[n], j = decode_value(s, j)
      return j
    end)
  elseif c == '"' then
    return decode_string(s, i)
  end
  if s:sub(i, i + 3) == "true" then return true, i + 4 end
  if s:sub(i, i + 4) == "false" then return false, i + 5 end
  if s:sub(i, i + 3) == "null" then return nil, i + 4 end  -- JSON null reads as nil: absent
  local number = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not number or number == "" or not tonumber(number) then error("unexpected JSON at " .. i) end
  return tonumber(number), i + #number
end

function M.decode(text)
  local value, i = decode_value(text, 1)
  if skip(text, i) <= #text then error("trailing text after the JSON") end
  return value
end

function M.read_json(path)
  local f, why = io.open(path, "r")
  if not f then error("cannot read " .. tostring(path) .. ": " .. tostring(why)) end
  local text = f:read("*a")
  f:close()
  return M.decode(text)
end

-- cuesmith send ---------------------------------------------------------------------------------

function M.quote(s)
  if WINDOWS then return '"' .. s .. '"' end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.bin()
  local configured = os.getenv("CUESMITH_BIN")
  if configured and configured ~= "" then return configured end
  if M.BIN:sub(1, 1) ~= "@" then return M.BIN end
  return "cuesmith"
end

local function temp_json_path()
  local name = os.tmpname()
  os.remove(name)  -- Lua 5.4 creates the file; we only want a free name
  if WINDOWS and name:sub(1, 1) == "\\" then name = (os.getenv("TEMP") or ".") .. name end
  return name .. ".json"
end

-- The request as `cuesmith send` takes it: inline JSON when short, else a .json file (removed afterwards).
function M.request_argument(request)
  local text = M.encode(request)
  if #text <= M.MAX_INLINE_JSON and not WINDOWS then return M.quote(text), nil end
  local path = temp_json_path()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return M.quote(path), path
end

function M.connection_options()
  local parts = {}
  for _, name in ipairs({"host", "port", "transport", "token"}) do
    local value = os.getenv("CUESMITH_" .. name:upper())
    if value and value ~= "" then parts[#parts + 1] = "--" .. name .. " " .. M.quote(value) end
  end
  return table.concat(parts, " ")
end

-- Run `cuesmith send KIND REQUEST`, call on_event(event) for every JSON line as it arrives, and return
-- the final event (result, failed, cancelled or error); lines that are not JSON become an error's message.
function M.send(kind, request, on_event)
  local argument, temp = M.request_argument(request)
  local command = M.quote(M.bin()) .. " send " .. kind .. " " .. argument .. " " .. M.connection_options() .. " 2>&1"
  if WINDOWS then command = '"' .. command .. '"' end  -- cmd /c strips one pair of outer quotes
  local pipe = io.popen(command, "r")
  if not pipe then error("cannot run " .. M.bin()) end
  local final, other = nil, {}
  for line in pipe:lines() do
    local ok, event = pcall(M.decode, line)
    if ok and type(event) == "table" then event.event = event.event or event.reply end  -- replies say "reply"
    if ok and type(event) == "table" and event.event then
      if on_event then on_event(event) end
      if M.FINAL[event.event] then final = event end
    elseif line:match("%S") then
      other[#other + 1] = line
    end
  end
  pipe:close()
  if temp then os.remove(temp) end
  return final or {event = "error", message = table.concat(other, " ") ~= "" and table.concat(other, " ")
    or ("no reply from " .. M.bin() .. " send")}
end

-- Score `clips` and return the decoded result.json, or nil and a one-line message.
function M.score(clips, say)
  local request = {clips = {}, stems = true, variations = 1}
  local family = os.getenv("CUESMITH_FAMILY")
  if family and family ~= "" then request.family = family end
  for i, c in ipairs(clips) do request.clips[i] = {video = c.video, start = c.start, ["end"] = c["end"]} end
  local last = ""
  local final = M.send("score", request, function(event)
    if event.event == "accepted" then say("cuesmith: job " .. tostring(event.job_id) .. " accepted") end
    if event.event == "progress" then
      local line = string.format("cuesmith: %s %3d%%", tostring(event.stage), math.floor((event.fraction or 0) * 100 + 0.5))
      if line ~= last then say(line) end
      last = line
    end
  end)
  if final.event ~= "result" then
    return nil, final.event .. ": " .. tostring(final.message or final.result or "")
  end
  return M.read_json(final.result)
end

-- The result ------------------------------------------------------------------------------------

-- result.json's placement; an error (one line) for a result written before it existed.
function M.placement(result)
  if type(result.placement) ~= "table" then
    error(string.format("the result has no placement (schema_version %s): update cuesmith and score again",
                        tostring(result.schema_version or 1)), 0)
  end
  return result.placement
end

-- [{name, path}]: the placement's stems without the mix, or only the mix (place == "mix" or no stems).
function M.audio_to_place(placement, place)
  local audio = placement.audio or {}
  local chosen = {}
  if place ~= "mix" then
    for name, path in pairs(audio.stems or {}) do chosen[#chosen + 1] = {name = name, path = path} end
    table.sort(chosen, function(a, b) return a.name < b.name end)
  end
  if #chosen == 0 and audio.mix then chosen[1] = {name = "mix", path = audio.mix} end
  return chosen
end

-- Where `seconds` into the score falls on the timeline, in the unit of the clips' record_start (frames
-- for Resolve, seconds for Reaper; `rate` units per second). The clips play back to back in the score,
-- so a moment inside clip k lands inside clip k on the timeline even when the clips have gaps.
function M.timeline_position(clips, seconds, rate)
  local elapsed = 0
  for i, clip in ipairs(clips) do
    local length = clip["end"] - clip.start
    if seconds < elapsed + length or i == #clips then
      return clip.record_start + (seconds - elapsed) * rate
    end
    elapsed = elapsed + length
  end
  return 0
end

-- The placement's markers (key moments and section starts): [{time, colour, grade, kind, name, note}];
-- colour is the placement's ("green", "yellow", "red", "blue").
function M.markers(placement)
  local marks = {}
  for i, m in ipairs(placement.markers or {}) do
    marks[i] = {time = m.time, colour = m.colour, grade = m.grade, kind = m.kind, name = "cuesmith " .. m.name,
                note = (m.note and m.note ~= "") and m.note or m.name}
  end
  return marks
end

return M
