-- Rejects a REST call whose JSON body names a field the request message does not have.
--
-- Envoy's grpc_json_transcoder drops unknown body fields before the server sees the request,
-- so `PUT /v1/scenarios/{id}` with {"name": "x"} would answer 200 and change nothing. This
-- script runs before the transcoder: it finds the REST binding the call matches, walks the
-- JSON body against that binding's body message (nested messages, repeated messages and map
-- values included; google.protobuf types such as Struct accept anything) and answers 400,
-- naming the first unknown field, before anything is transcoded.
--
-- deploy/gateway.py prepends the two tables it reads, generated from the protos' descriptors:
--   ROUTES   = { {method=, verb=, pattern=, template=, body=}, ... }  most specific first
--   MESSAGES = { ["pkg.Type"] = { [field name] = child, ... }, ... }
-- A child is false (a value the transcoder checks itself: scalar, enum, google.protobuf type),
-- a message type name, or {map = type name} for a map whose values are messages. Both the
-- proto name and the JSON (lowerCamel) name of every field are keys, as the transcoder
-- accepts both. VERBS is the set of custom verbs (`:undelete`) the bindings use.
--
-- A body this scanner cannot read goes on unchanged: the transcoder then rejects it with its
-- own message, so malformed JSON keeps the error it always had.

local byte, find, sub, char = string.byte, string.find, string.sub, string.char

local QUOTE, BACKSLASH, COLON, COMMA = 34, 92, 58, 44
local OPEN_OBJECT, CLOSE_OBJECT, OPEN_ARRAY, CLOSE_ARRAY = 123, 125, 91, 93

-- Raised (as a table, so it cannot be mistaken for a Lua error) on the first unknown field.
local Unknown = {}
Unknown.__index = Unknown

local function skip_space(s, i)
  local _, last = find(s, "^[ \t\r\n]*", i)
  return last + 1
end

local function utf8(code)
  if code < 0x80 then
    return char(code)
  elseif code < 0x800 then
    return char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
      0x80 + code % 0x40)
  end
  return char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local ESCAPES = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
  [110] = "\n", [114] = "\r", [116] = "\t" }

-- The string starting at s[i] (a quote): its decoded text and the index after it.
local function read_string(s, i)
  local parts, start = {}, i + 1
  while true do
    local at = find(s, '["\\]', start)
    if not at then
      error("unterminated string", 0)
    end
    parts[#parts + 1] = sub(s, start, at - 1)
    if byte(s, at) == QUOTE then
      return table.concat(parts), at + 1
    end
    local escape = byte(s, at + 1)
    if escape == 117 then -- \uXXXX, with a surrogate pair as one code point
      local code = tonumber(sub(s, at + 2, at + 5), 16)
      if not code then
        error("bad \\u escape", 0)
      end
      start = at + 6
      if code >= 0xD800 and code < 0xDC00 and sub(s, start, start + 1) == "\\u" then
        local low = tonumber(sub(s, start + 2, start + 5), 16)
        if low and low >= 0xDC00 and low < 0xE000 then
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          start = start + 6
        end
      end
      parts[#parts + 1] = utf8(code)
    elseif ESCAPES[escape] then
      parts[#parts + 1] = ESCAPES[escape]
      start = at + 2
    else
      error("bad escape", 0)
    end
  end
end

-- The index after the string starting at s[i], not decoded: values are the transcoder's.
local function skip_string(s, i)
  local start = i + 1
  while true do
    local at = find(s, '["\\]', start)
    if not at then
      error("unterminated string", 0)
    end
    if byte(s, at) == QUOTE then
      return at + 1
    end
    start = at + 2
  end
end

local scan_value

-- The object at s[i]; `schema` is a message type name, {map = type}, or nil (anything goes).
local function scan_object(s, i, schema, path)
  local fields = type(schema) == "string" and MESSAGES[schema] or nil
  local values = type(schema) == "table" and schema.map or nil
  i = skip_space(s, i + 1)
  if byte(s, i) == CLOSE_OBJECT then
    return i + 1
  end
  while true do
    if byte(s, i) ~= QUOTE then
      error("expected a key", 0)
    end
    local key
    key, i = read_string(s, i)
    local child = nil
    if fields then
      child = fields[key]
      if child == nil then
        error(setmetatable({ field = path .. key, message = schema, name = key }, Unknown), 0)
      end
    elseif values then
      child = values
    end
    i = skip_space(s, i)
    if byte(s, i) ~= COLON then
      error("expected a colon", 0)
    end
    i = skip_space(s, i + 1)
    if child then
      i = scan_value(s, i, child, path .. key)
    else
      i = scan_value(s, i, nil, nil)
    end
    i = skip_space(s, i)
    local after = byte(s, i)
    if after == CLOSE_OBJECT then
      return i + 1
    elseif after ~= COMMA then
      error("expected a comma", 0)
    end
    i = skip_space(s, i + 1)
  end
end

-- The value at s[i]; returns the index after it. `path` is nil where nothing is checked.
scan_value = function(s, i, schema, path)
  local first = byte(s, i)
  if first == OPEN_OBJECT then
    return scan_object(s, i, schema, path and (path .. ".") or "")
  elseif first == OPEN_ARRAY then
    -- A repeated field: every element has the field's type.
    local index = 0
    i = skip_space(s, i + 1)
    if byte(s, i) == CLOSE_ARRAY then
      return i + 1
    end
    while true do
      i = scan_value(s, i, schema, path and (path .. "[" .. index .. "]"))
      index = index + 1
      i = skip_space(s, i)
      local after = byte(s, i)
      if after == CLOSE_ARRAY then
        return i + 1
      elseif after ~= COMMA then
        error("expected a comma", 0)
      end
      i = skip_space(s, i + 1)
    end
  elseif first == QUOTE then
    return skip_string(s, i)
  end
  -- A number, true, false or null: the transcoder checks it.
  local _, last = find(s, "^[%w.+-]+", i)
  if not last then
    error("expected a value", 0)
  end
  return last + 1
end

-- The body message of the REST binding `method path` matches, or nil.
local function binding(method, path)
  local verb = ""
  local slash = find(path, "/[^/]*$")
  if not slash then
    return nil
  end
  local last_segment = sub(path, slash)
  local colon = find(last_segment, ":[^:]*$")
  if colon and VERBS[sub(last_segment, colon + 1)] then
    verb = sub(last_segment, colon + 1)
    path = sub(path, 1, #path - #last_segment + colon - 1)
  end
  for _, route in ipairs(ROUTES) do
    if route.method == method and route.verb == verb and find(path, route.pattern) then
      return route
    end
  end
  return nil
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  if sub(content_type, 1, 16) == "application/grpc" then
    return -- native gRPC: no JSON to check
  end
  local path = headers:get(":path") or ""
  local query = find(path, "?", 1, true)
  if query then
    path = sub(path, 1, query - 1)
  end
  local route = binding(headers:get(":method"), path)
  if not route then
    return
  end
  local body = handle:body()
  if not body or body:length() == 0 then
    return
  end
  local text = body:getBytes(0, body:length())
  local start = skip_space(text, 1)
  if byte(text, start) ~= OPEN_OBJECT then
    return
  end
  local ok, failure = pcall(scan_value, text, start, route.body, nil)
  if ok or getmetatable(failure) ~= Unknown then
    return -- valid, or JSON the transcoder will reject with its own message
  end
  handle:respond(
    { [":status"] = "400", ["content-type"] = "text/plain" },
    string.format(
      'unknown field "%s" in the JSON body of %s %s: %s has no field "%s"',
      failure.field, route.method, route.template, failure.message, failure.name
    )
  )
end
