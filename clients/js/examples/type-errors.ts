// Mistakes the declarations must catch: each line under @ts-expect-error has to be a type error, or tsc fails
// ("Unused '@ts-expect-error' directive"). Compiled with typed-usage.ts by clients/js/typecheck.sh.
import { TradeRoomClient, type RoomSnapshot } from "traderoom-client";

// @ts-expect-error a token is required
new TradeRoomClient({ url: "ws://localhost:4001/ws" });
// @ts-expect-error url and urls together
new TradeRoomClient({ url: "ws://a/ws", urls: ["ws://b/ws"], token: "t" });

const client = new TradeRoomClient({ url: "ws://localhost:4001/ws", token: "t" });
// @ts-expect-error not a client event
client.on("stat", () => {});
// @ts-expect-error a room id is a string or a number
client.subscribe({ id: "bp-1" });

const room = client.subscribe("bp-1");
// @ts-expect-error not one of the 14 event types
room.on("order_exectued", () => {});
room.on("member_joined", (data) => {
  // @ts-expect-error a member event's userId is not checked by the server, so it may be missing
  const user: string = data.userId;
  console.log(user);
});
room.on("order_failed", (data) => {
  // @ts-expect-error qty is a number
  const qty: string = data.qty ?? "";
  console.log(qty);
});

function draw(state: RoomSnapshot): void {
  // @ts-expect-error the leaderboard is null until one was published
  console.log(state.leaderboard.entries);
}
void draw;
// @ts-expect-error position is read-only
room.position = 3;
