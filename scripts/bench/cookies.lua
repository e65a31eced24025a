-- wrk script for session cookies the filter has not kept: each request carries the next
-- session cookie from the file named by COOKIES_FILE, on the path COOKIE_PATH, going
-- round the file. With more cookies in the file than the filter's session cache keeps,
-- every request misses the cache and checks the cookie's signature.
local cookies = {}
for line in io.lines(os.getenv("COOKIES_FILE")) do
  cookies[#cookies + 1] = line
end

local index = 0

function request()
  index = index % #cookies + 1
  return wrk.format("GET", os.getenv("COOKIE_PATH"), { Cookie = cookies[index] })
end
