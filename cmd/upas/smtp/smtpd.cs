namespace Upas.Smtpd;
static class Program { static int Main(string[] a) { Console.WriteLine(Upas.Root.Dir); return 0; } }
