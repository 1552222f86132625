using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace TradeRoom.Transport;

public static class TransportServices
{
    /// <summary>
    /// Registers the WebSocket transport: <see cref="WebSocketConnectionHandler"/> serving <typeparamref name="TApplication"/>
    /// (map it onto a port with <c>listen.UseConnectionHandler&lt;WebSocketConnectionHandler&gt;()</c>), the open sockets,
    /// their sweeper, and Kestrel's buffers from the shared array pool (<see cref="TransportBuffers"/>).
    /// </summary>
    public static IServiceCollection AddWebSocketTransport<TApplication>(this IServiceCollection services, TransportOptions options, ITransportMetrics metrics)
        where TApplication : class, IWebSocketApplication
    {
        services.AddSingleton(options);
        services.AddSingleton(metrics);
        services.AddSingleton<OpenSockets>();
        services.AddSingleton<IWebSocketApplication, TApplication>();
        services.AddSingleton<WebSocketConnectionHandler>();
        services.AddHostedService<SocketSweeper>();
        // Kestrel's buffers from the shared array pool, not its own pool, which keeps the peak of a wave of sockets.
        services.AddSingleton<IMemoryPoolFactory<byte>, TransportBuffers>();
        return services;
    }
}
