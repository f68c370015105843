"""The queue's Lua scripts: each runs atomically on the Redis server, so a count and the acknowledgement it
belongs with (or a check and the change it guards) can never be split by a crash or another client."""

# KEYS: done set, stats hash, stream, failed hash, gpu-hours hash, progress stream, diagnostics hash, compiles set
# ARGV: item id, outcome, gpu ms, lines, group, entry id, epoch hour, job uid, progress maxlen, verdict
# ("compiles", "translated" or ""), tokens, diagnostics (JSON, "" for none)
COMPLETE = """
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], '*', 'job', ARGV[8])
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 then
  redis.call('HINCRBY', KEYS[2], 'done', 1)
  if ARGV[2] == 'cached' then redis.call('HINCRBY', KEYS[2], 'cached', 1) end
  redis.call('HINCRBY', KEYS[2], 'gpu_ms', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'lines', ARGV[4])
  redis.call('HINCRBY', KEYS[5], ARGV[7], ARGV[3])
  if ARGV[10] == 'compiles' then
    redis.call('HINCRBY', KEYS[2], 'compiles', 1)
    redis.call('SADD', KEYS[8], ARGV[1])
  end
  if ARGV[11] ~= '0' then redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[11]) end
  if ARGV[12] ~= '' then redis.call('HSET', KEYS[7], ARGV[1], ARGV[12]) end
  if redis.call('HDEL', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[2], 'failed', -1) end
end
redis.call('XACK', KEYS[3], ARGV[5], ARGV[6])
redis.call('XDEL', KEYS[3], ARGV[6])
return added
"""

# KEYS: failed hash, stats hash, stream, dead-letter stream, done set, progress stream
# ARGV: item id, reason, group, entry id, dead-letter maxlen, job uid, progress maxlen, then the dead-letter
# entry's field/value pairs
FAIL = """
local counted = 0
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[7], '*', 'job', ARGV[6])
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 0 and redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 8))
  counted = 1
end
redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
return counted
"""

# KEYS: stream
# ARGV: group, entry id, consumer, then the copy's field/value pairs
# Only the consumer that holds the entry may put it back; after a reclaim it belongs to another worker.
RELEASE = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS: failed hash, stats hash, done set
# ARGV: item id, reason
RECORD_FAILURE = """
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 and redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'failed', 1)
  return 1
end
return 0
"""

# KEYS: done set, stats hash, failed hash
# ARGV: item ids
MARK_DONE = """
local added = 0
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    added = added + 1
    if redis.call('HDEL', KEYS[3], ARGV[i]) == 1 then redis.call('HINCRBY', KEYS[2], 'failed', -1) end
  end
end
if added > 0 then redis.call('HINCRBY', KEYS[2], 'done', added) end
return added
"""

# KEYS: stream
# ARGV: group, then entry ids; deletes those no worker holds
REMOVE_WAITING = """
local removed = 0
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) == 0 then
    removed = removed + redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""

# KEYS: workers sorted set (name -> when its heartbeat expires)
# ARGV: now (epoch seconds), heartbeat key prefix, seconds an expired worker stays in the set (so that ORPHAN can still
# tell it died)
# Returns the live workers and their heartbeats. The heartbeat keys share the queue's hash tag, so reading them here
# stays on one slot.
WORKERS = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[3])
local names = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE')
if #names == 0 then return {} end
local values = {}
for first = 1, #names, 1000 do  -- unpack() takes a bounded number of arguments: read in chunks
  local keys = {}
  for i = first, math.min(first + 999, #names) do keys[#keys + 1] = ARGV[2] .. names[i] end
  for _, v in ipairs(redis.call('MGET', unpack(keys))) do values[#values + 1] = v end
end
return {names, values}
"""

# KEYS: workers sorted set, then the streams, highest priority first
# ARGV: group, now (epoch seconds), the claiming consumer, idle ms after which a dead consumer with nothing pending
# leaves the group
# A consumer is dead when it beat (it is in the workers set) and its heartbeat has expired; a consumer that never
# beat is left to the visibility timeout. Returns the first entry, highest priority first, a dead consumer held,
# claimed for ARGV[3] within this script so that no other worker claims it too: {stream, entry id, fields, times
# delivered, dead consumer}; nil when no dead worker holds anything.
ORPHAN = """
local function field(info, name)
  for i = 1, #info, 2 do if info[i] == name then return info[i + 1] end end
  return nil
end
local now = tonumber(ARGV[2])
for s = 2, #KEYS do
  local stream = KEYS[s]
  if redis.call('EXISTS', stream) == 1 then
    for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, ARGV[1])) do
      local name = field(info, 'name')
      local expires = redis.call('ZSCORE', KEYS[1], name)
      if name ~= ARGV[3] and expires and tonumber(expires) < now then
        if tonumber(field(info, 'pending')) > 0 then
          local held = redis.call('XPENDING', stream, ARGV[1], '-', '+', 1, name)
          if #held > 0 then
            local claimed = redis.call('XCLAIM', stream, ARGV[1], ARGV[3], 0, held[1][1])
            if #claimed > 0 and claimed[1][2] then
              return {stream, held[1][1], claimed[1][2], held[1][4] + 1, name}
            end
            -- the entry was deleted under it: drop the dangling reference
            redis.call('XACK', stream, ARGV[1], held[1][1])
          end
        elseif tonumber(field(info, 'idle')) > tonumber(ARGV[4]) then
          redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[1], name)
        end
      end
    end
  end
end
return nil
"""
