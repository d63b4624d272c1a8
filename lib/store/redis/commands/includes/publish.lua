-- Events go to the store-wide channels under the key prefix the caller passes (a channel is no key:
-- it has no slot). job-finished has a channel of its own: workers listen to ':events' only, so that
-- they do not hear of every job finished anywhere.
local function publish(channelPrefix, event)
  local channel = event.type == 'job-finished' and ':finished' or ':events'
  redis.call('PUBLISH', channelPrefix .. channel, cjson.encode(event))
end
