using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using R1Sharp.Board;

namespace R1Sharp.Tests.Board;

[CollectionDefinition(Name)]
public sealed class BoardBrowserCollection : ICollectionFixture<BoardBrowser>
{
    public const string Name = "board in a browser";
}

/// <summary>
/// One board server over <see cref="BoardFixtureRuns"/> and one headless Chromium (Debian's chromium and
/// chromium-driver, driven through Selenium WebDriver) shared by every browser test: starting a browser costs more than
/// most tests. Without the browser the tests fail and say how to install it; they never pass silently.
/// </summary>
public sealed class BoardBrowser : IAsyncLifetime
{
    public const string InstallHint = "apt-get install -y chromium chromium-driver (.ci/run installs them when missing)";
    ChromeDriver? driver;
    string? profile;

    public BoardFixtureRuns Runs { get; } = new();
    public BoardServer Server { get; private set; } = null!;
    public Uri Base { get; private set; } = null!;
    /// <summary>Where screenshots go: the test output folder.</summary>
    public string ScreenshotDir { get; } = Path.Combine(AppContext.BaseDirectory, "board-screenshots");

    public async Task InitializeAsync()
    {
        Server = new BoardServer(new BoardOptions
        {
            Folders = [Runs.Root, Runs.EmptyRoot], Host = "127.0.0.1", Port = 0, PollInterval = TimeSpan.FromMilliseconds(100),
        });
        Base = await Server.StartAsync();
    }

    public string Id(string relative) => Runs.Label + "/" + relative;

    /// <summary>The browser, started on first use.</summary>
    public IWebDriver Driver
    {
        get
        {
            if (driver is not null) return driver;
            string chromium = Environment.GetEnvironmentVariable("R1SHARP_CHROMIUM") ?? "/usr/bin/chromium";
            string chromedriver = Environment.GetEnvironmentVariable("R1SHARP_CHROMEDRIVER") ?? "/usr/bin/chromedriver";
            if (!File.Exists(chromium) || !File.Exists(chromedriver))
                throw new InvalidOperationException(
                    $"the board's browser tests need Chromium and ChromeDriver ({(File.Exists(chromium) ? "" : chromium + " missing; ")}{(File.Exists(chromedriver) ? "" : chromedriver + " missing; ")}" +
                    $"install them with: {InstallHint}, or point R1SHARP_CHROMIUM and R1SHARP_CHROMEDRIVER at them)");
            profile = Path.Combine(Path.GetTempPath(), "r1sharp-chromium-" + Guid.NewGuid().ToString("N")[..12]);
            var options = new ChromeOptions { BinaryLocation = chromium };
            // Root in a container needs --no-sandbox; the background-networking flags keep Chromium from calling
            // out on this closed network.
            options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--window-size=1400,1000", "--user-data-dir=" + profile);
            var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(chromedriver)!, Path.GetFileName(chromedriver));
            service.SuppressInitialDiagnosticInformation = true;
            service.HideCommandPromptWindow = true;
            driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
            driver.Manage().Timeouts().AsynchronousJavaScript = TimeSpan.FromSeconds(20);
            return driver;
        }
    }

    /// <summary>Loads the page afresh at this #fragment (a blank page first, so a hash alone is not just a hash change).</summary>
    public void Open(string fragment)
    {
        Driver.Navigate().GoToUrl("about:blank");
        Driver.Navigate().GoToUrl(new Uri(Base, "/#" + fragment).ToString());
    }

    public object? Js(string script, params object[] args) => ((IJavaScriptExecutor)Driver).ExecuteScript(script, args);

    /// <summary>Polls a condition for up to 30 s (the page updates asynchronously; a loaded CI machine is slow); fails with what it was waiting for
    /// and what the page last showed.</summary>
    public T WaitFor<T>(Func<T?> probe, Func<T, bool> done, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        T? last = default;
        Exception? lastError = null;
        while (DateTime.UtcNow < until)
        {
            try
            {
                last = probe();
                if (last is not null && done(last)) return last;
            }
            catch (WebDriverException e) { lastError = e; }
            Thread.Sleep(100);
        }
        string errors = Js("return (window.board && window.board.errors || []).join('; ')") as string ?? "";
        throw new TimeoutException($"waited 30 s for {what}; last seen: {Describe(last)}{(lastError is null ? "" : $"; {lastError.Message}")}{(errors.Length > 0 ? $"; page errors: {errors}" : "")}");
    }

    static string Describe(object? o) => o switch
    {
        null => "nothing",
        System.Collections.IEnumerable e when o is not string => "[" + string.Join(", ", e.Cast<object?>().Select(Describe)) + "]",
        _ => o.ToString() ?? "",
    };

    public string Screenshot(string name)
    {
        Directory.CreateDirectory(ScreenshotDir);
        string path = Path.Combine(ScreenshotDir, name + ".png");
        ((ITakesScreenshot)Driver).GetScreenshot().SaveAsFile(path);
        return path;
    }

    public async Task DisposeAsync()
    {
        if (driver is not null)
        {
            try { driver.Quit(); } catch (WebDriverException) { }
            driver.Dispose();
        }
        if (profile is not null) try { Directory.Delete(profile, true); } catch (IOException) { }
        await Server.DisposeAsync();
        Runs.Dispose();
    }
}
