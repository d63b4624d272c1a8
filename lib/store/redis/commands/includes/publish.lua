-- Events go to the shard channels of the partition whose key prefix the caller passes. A channel named
-- under the partition's prefix hashes to the partition's slot, so SPUBLISH keeps the message on the
-- shard that ran the script (a plain PUBLISH would go to every node of a Cluster). job-finished has a
-- channel of its own: workers listen to ':events' only, so that they do not hear of every job finished
-- anywhere.
local function publish(channelPrefix, event)
  local channel = event.type == 'job-finished' and ':finished' or ':events'
  redis.call('SPUBLISH', channelPrefix .. channel, cjson.encode(event))
end
