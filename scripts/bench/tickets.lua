-- wrk script for the ticket path: each request carries the next unused service ticket
-- from the file named by TICKETS_FILE, on the path TICKET_PATH. Run it with one thread
-- (-t1) so no two requests share a ticket. Once every ticket is used the last one is
-- sent again, and CAS rejects it: such replays show as non-2xx responses in the results.
local tickets = {}
for line in io.lines(os.getenv("TICKETS_FILE")) do
  tickets[#tickets + 1] = line
end

local index = 0

function request()
  index = math.min(index + 1, #tickets)
  return wrk.format("GET", os.getenv("TICKET_PATH") .. "?ticket=" .. tickets[index])
end
