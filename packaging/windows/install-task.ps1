# Runs fluxstat at Windows start-up as a scheduled task under the low-privilege
# LOCAL SERVICE account, restarted if it stops, and opens its port in the firewall
# for private networks only (home/office LAN, not public Wi-Fi). Run in an
# elevated PowerShell:
#   powershell -ExecutionPolicy Bypass -File install-task.ps1 [-Exe C:\path\fluxstat.exe] [-Arguments "--interval 5s"] [-Port 8001]
# Remove with: Unregister-ScheduledTask -TaskName fluxstat; Remove-NetFirewallRule -DisplayName fluxstat
# A task has no console, so it is stopped by Stop-ScheduledTask or at shutdown,
# not by Ctrl-C. Not run by the project's CI (there is no PowerShell under wine).
param(
    [string]$Exe = "$env:ProgramFiles\fluxstat\fluxstat.exe",
    [string]$Arguments = "",
    [int]$Port = 8001
)
$ErrorActionPreference = "Stop"
if (-not (Test-Path $Exe)) { throw "no ${Exe}: copy fluxstat.exe there or pass -Exe" }

$action = if ($Arguments) { New-ScheduledTaskAction -Execute $Exe -Argument $Arguments } else { New-ScheduledTaskAction -Execute $Exe }
$trigger = New-ScheduledTaskTrigger -AtStartup
$principal = New-ScheduledTaskPrincipal -UserId "NT AUTHORITY\LOCAL SERVICE" -LogonType ServiceAccount
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 `
    -RestartInterval (New-TimeSpan -Minutes 1) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskName "fluxstat" -Action $action -Trigger $trigger -Principal $principal `
    -Settings $settings -Description "fluxstat: system metrics as JSON on port $Port" -Force | Out-Null

Remove-NetFirewallRule -DisplayName "fluxstat" -ErrorAction SilentlyContinue
New-NetFirewallRule -DisplayName "fluxstat" -Direction Inbound -Program $Exe -Protocol TCP -LocalPort $Port `
    -Profile Private -Action Allow | Out-Null

Start-ScheduledTask -TaskName "fluxstat"
Write-Output "fluxstat runs at start-up as LOCAL SERVICE; try http://localhost:$Port/metrics"
