namespace TradeRoom.Tests.Support;

/// <summary>Scratch folders for the SQLite files of test servers.</summary>
public static class TestDatabase
{
    /// <summary>A new empty folder in the temp directory for one server's database.</summary>
    public static string NewSqliteFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "traderoom-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    public static void Delete(string? folder)
    {
        if (folder is null)
            return;
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open (a killed server's): the temp directory's own cleanup takes it.
        }
    }
}
