namespace TradeRoom.Contracts;

/// <summary>HOCON a publisher's actor system needs to speak to the server.</summary>
public static class ContractsConfig
{
    /// <summary>
    /// Binds the publish messages to <see cref="PublishSerializer"/>: the same binding as the server's hocon/akka.conf,
    /// so both sides write and read them in the one compact form (a test checks the two agree).
    /// </summary>
    public const string Serialization = """
        akka.actor {
          serializers.traderoom-contracts = "TradeRoom.Contracts.PublishSerializer, TradeRoom.Contracts"
          serialization-bindings {
            "TradeRoom.Contracts.PublishEvent, TradeRoom.Contracts" = traderoom-contracts
            "TradeRoom.Contracts.PublishResult, TradeRoom.Contracts" = traderoom-contracts
          }
        }
        """;
}
