// defender-forwarder: everything the Function needs, in one resource group.
//
// Defender for Cloud continuous export -> Event Hub -> Function App (Flex Consumption, Node 22)
//   -> Splunk HEC / Teams / email. Secrets live in Key Vault and reach the app as Key Vault references;
//   the app reaches Event Hubs, Storage, Key Vault and Application Insights with its system-assigned
//   managed identity (no connection strings, no storage keys).
//
// Bicep cannot be compiled where this was written: validate with `az bicep build --file infra/main.bicep`
// and `azd provision --preview` (see infra/README.md).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------------
// Parameters: naming and placement
// ---------------------------------------------------------------------------------------------------------

@description('Name of the environment (azd sets it from AZURE_ENV_NAME); used to derive unique resource names and as a tag.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region for all resources.')
param location string = resourceGroup().location

@description('Tags added to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------------------
// Parameters: Function App (Flex Consumption)
// ---------------------------------------------------------------------------------------------------------

@description('Flex Consumption: the most instances the app may scale out to (Flex allows 40 to 1000). Event Hubs scaling never uses more instances than the hub has partitions.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Blob container the Flex Consumption deployment package is uploaded to.')
param deploymentContainerName string = 'app-package'

@description('ROUTES_FILE: the routing rules, relative to the app root. The file must be deployed with the app (copy config/routes.example.yaml to config/routes.yaml and edit it).')
param routesFile string = 'config/routes.yaml'

@description('ROUTES_BLOB_URL: the URL of a blob holding the routing rules (https://<account>.blob.core.windows.net/<container>/routes.yaml), read instead of ROUTES_FILE and re-read when its ETag changes, so a rules change needs no redeployment. Empty: the deployed file is used. The app reads it with its managed identity: the blob must be in the app\'s storage account (the identity has Storage Blob Data Owner there) or the identity needs Storage Blob Data Reader on the blob\'s account or container. Do not put a SAS URL here (it would show in the deployment history): pass it in extraAppSettings as a Key Vault reference.')
param routesBlobUrl string = ''

@description('ROUTES_REFRESH_SECONDS: how often at most the app checks the rules blob\'s ETag (5 to 3600); a rules change takes effect within this time.')
@minValue(5)
@maxValue(3600)
param routesRefreshSeconds int = 60

@description('Additional app settings (name -> value), e.g. for other \${ENV} names your rules refer to. Use "@Microsoft.KeyVault(SecretUri=...)" references for secrets, never literal secrets.')
param extraAppSettings object = {}

// Optional forwarder settings, with the code's defaults (src/config/appSettings.ts).

@description('DELIVERY_BUDGET_SECONDS: time to deliver one batch to one destination, retries included (5 to 300).')
@minValue(5)
@maxValue(300)
param deliveryBudgetSeconds int = 120

@description('LEDGER_LEASE_SECONDS: how long a notification claim of a run that stopped blocks that notification (10 to 86400).')
@minValue(10)
@maxValue(86400)
param ledgerLeaseSeconds int = 600

@description('REDRIVE_SCHEDULE: NCRONTAB expression (six fields, with seconds) of the dead-letter re-drive timer.')
param redriveSchedule string = '0 */5 * * * *'

@description('REDRIVE_MAX_AGE_HOURS: a dead letter older than this that fails again expires (1 to 8760).')
@minValue(1)
@maxValue(8760)
param redriveMaxAgeHours int = 168

@description('REDRIVE_MIN_INTERVAL_SECONDS: spacing after a dead letter\'s first failed re-drive; doubles after each, 6 hours at most (1 to 21600).')
@minValue(1)
@maxValue(21600)
param redriveMinIntervalSeconds int = 60

@description('QUARANTINE_CONTAINER: blob container for quarantined records.')
param quarantineContainer string = 'quarantine'

@description('DEADLETTER_CONTAINER: blob container for dead letters.')
param deadLetterContainer string = 'deadletter'

@description('LEDGER_CONTAINER: blob container for the notification ledger.')
param ledgerContainer string = 'ledger'

// ---------------------------------------------------------------------------------------------------------
// Parameters: Event Hubs
// ---------------------------------------------------------------------------------------------------------

@description('Name of the Event Hub Defender exports to (EVENTHUB_NAME).')
param eventHubName string = 'defender-export'

@description('Partitions of the Event Hub: the most Function instances that read it at once. Cannot be changed later on the Standard tier.')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('Days the Event Hub keeps events (Standard tier: 1 to 7): how long the forwarder may be down without losing exports.')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 7

@description('Consumer group dedicated to the forwarder (EVENTHUB_CONSUMER_GROUP); $Default is refused by the app.')
param consumerGroupName string = 'defender-forwarder'

// ---------------------------------------------------------------------------------------------------------
// Parameters: destinations (the ${ENV} names of config/routes.example.yaml)
// ---------------------------------------------------------------------------------------------------------

@description('HEC_URL: Splunk HTTP Event Collector base URL, e.g. https://splunk.contoso.com:8088 (not a secret).')
param hecUrl string

@secure()
@description('HEC_TOKEN: the Splunk HEC token. Stored in Key Vault.')
param hecToken string

@secure()
@description('SMTP_URL: smtp://host:587 or smtps://user:password@host:465 (may hold credentials). Stored in Key Vault.')
param smtpUrl string

@secure()
@description('ONCALL_TEAMS_URL: Teams Workflows webhook URL of the on-call channel (signed: a secret). Stored in Key Vault.')
param oncallTeamsUrl string

@secure()
@description('PLATFORM_TEAMS_URL: Teams Workflows webhook URL of the platform team\'s channel (signed: a secret). Stored in Key Vault.')
param platformTeamsUrl string

// ---------------------------------------------------------------------------------------------------------
// Parameters: Key Vault
// ---------------------------------------------------------------------------------------------------------

@description('Turn on Key Vault purge protection (recommended in production; it cannot be turned off again, and a purge-protected vault name stays taken for the retention period after deletion).')
param enablePurgeProtection bool = true

@description('Days a deleted vault or secret can be recovered (7 to 90).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

// ---------------------------------------------------------------------------------------------------------
// Parameters: Defender for Cloud continuous export
// ---------------------------------------------------------------------------------------------------------

@description('Create the Defender for Cloud continuous export (Microsoft.Security/automations) to the Event Hub, for this subscription.')
param deployContinuousExport bool = true

@description('Defender data types to export. Assessments is added when SubAssessments is chosen (findings need their parent recommendation).')
@allowed([
  'Alerts'
  'Assessments'
  'SubAssessments'
  'SecureScores'
  'SecureScoreControls'
  'RegulatoryComplianceAssessment'
])
param exportSources array = [
  'Alerts'
  'Assessments'
  'SubAssessments'
  'SecureScores'
  'SecureScoreControls'
  'RegulatoryComplianceAssessment'
]

@description('Also export the weekly snapshots (the *Snapshot event sources) of the chosen data types other than Alerts.')
param includeSnapshots bool = true

@description('Lowest severity of the security alerts exported: all (no filter: Informational alerts too, which the example rules keep in Splunk), or low, medium, high (Defender\'s continuous export filters alerts by Low, Medium, High).')
@allowed([
  'all'
  'low'
  'medium'
  'high'
])
param minimumAlertSeverity string = 'all'

// ---------------------------------------------------------------------------------------------------------
// Parameters: monitoring
// ---------------------------------------------------------------------------------------------------------

@description('Days Log Analytics keeps the logs (Application Insights data included).')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('E-mail address the alert rules notify. Empty: the alert rules are created without an action group.')
param alertEmail string = ''

@description('Alert when the Event Hub function has written no run.summary line for this many hours (Defender exports only on changes: choose a window in which some export is certain).')
@minValue(1)
@maxValue(48)
param silenceAlertHours int = 24

@description('Alert when a batch is older than this many minutes when the forwarder starts on it (metric forwarder.batch.age: now minus the enqueued time of its oldest event). The forwarder is falling behind the hub, or a partition is stuck on a store outage.')
@minValue(5)
@maxValue(1440)
param batchAgeAlertMinutes int = 30

// ---------------------------------------------------------------------------------------------------------
// Names and constants
// ---------------------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var allTags = union(tags, { 'azd-env-name': environmentName })

var names = {
  logAnalytics: 'log-${token}'
  appInsights: 'appi-${token}'
  storage: 'st${token}'
  plan: 'plan-${token}'
  functionApp: 'func-${token}'
  eventHubNamespace: 'evhns-${token}'
  keyVault: 'kv-${token}'
  actionGroup: 'ag-${token}'
}

// Built-in role definitions the app's identity is given (ids from the Azure built-in roles list).
var roles = {
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' // Azure Event Hubs Data Receiver
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}

// ---------------------------------------------------------------------------------------------------------
// Monitoring: Log Analytics + Application Insights (local auth off: the app sends with its identity)
// ---------------------------------------------------------------------------------------------------------

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: names.logAnalytics
  location: location
  tags: allTags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: names.appInsights
  location: location
  tags: allTags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// ---------------------------------------------------------------------------------------------------------
// Storage: host storage, the Flex deployment package, and the forwarder's blobs (identity only)
// ---------------------------------------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: names.storage
  location: location
  tags: allTags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// The deployment package container, and the forwarder's containers (the app would create them, too).
resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in [deploymentContainerName, quarantineContainer, deadLetterContainer, ledgerContainer]: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// ---------------------------------------------------------------------------------------------------------
// Event Hubs: namespace, hub, the forwarder's consumer group, a Send-only rule for Defender
// ---------------------------------------------------------------------------------------------------------

// Local (SAS) auth stays on: Defender's continuous export sends with the Send rule's connection string.
resource eventHubNamespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: names.eventHubNamespace
  location: location
  tags: allTags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: 1
  }
  properties: {
    minimumTlsVersion: '1.2'
  }
}

resource eventHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubNamespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: eventHub
  name: consumerGroupName
  properties: {
    userMetadata: 'defender-forwarder Function App'
  }
}

resource defenderSendRule 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: eventHub
  name: 'defender-export-send'
  properties: {
    rights: [
      'Send'
    ]
  }
}

// ---------------------------------------------------------------------------------------------------------
// Key Vault (RBAC) and the destination secrets
// ---------------------------------------------------------------------------------------------------------

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: names.keyVault
  location: location
  tags: allTags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Purge protection can only be turned on: leave the property out to keep it off.
    enablePurgeProtection: enablePurgeProtection ? true : null
  }
}

resource hecTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'hec-token'
  properties: {
    value: hecToken
  }
}

resource smtpUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'smtp-url'
  properties: {
    value: smtpUrl
  }
}

resource oncallTeamsUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'oncall-teams-url'
  properties: {
    value: oncallTeamsUrl
  }
}

resource platformTeamsUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: keyVault
  name: 'platform-teams-url'
  properties: {
    value: platformTeamsUrl
  }
}

// ---------------------------------------------------------------------------------------------------------
// Function App on Flex Consumption, system-assigned identity
// ---------------------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: names.plan
  location: location
  tags: allTags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: names.functionApp
  location: location
  tags: union(allTags, { 'azd-service-name': 'forwarder' })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// Every setting the app reads, identity-based. Flex Consumption takes the runtime from functionAppConfig:
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION must not be set. Left out on purpose:
// FORWARDER_STORAGE_CONNECTION and EVENTHUB_CONNECTION (connection strings; the identity settings below
// replace them), AzureWebJobsStorage__credential / __clientId (needed for a user-assigned identity only).
var functionAppSettings = {
  AzureWebJobsStorage__accountName: storage.name
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  EVENTHUB_CONNECTION__fullyQualifiedNamespace: '${eventHubNamespace.name}.servicebus.windows.net'
  EVENTHUB_NAME: eventHub.name
  EVENTHUB_CONSUMER_GROUP: consumerGroup.name
  ROUTES_FILE: routesFile
  ROUTES_BLOB_URL: routesBlobUrl
  ROUTES_REFRESH_SECONDS: string(routesRefreshSeconds)
  QUARANTINE_CONTAINER: quarantineContainer
  DEADLETTER_CONTAINER: deadLetterContainer
  LEDGER_CONTAINER: ledgerContainer
  DELIVERY_BUDGET_SECONDS: string(deliveryBudgetSeconds)
  LEDGER_LEASE_SECONDS: string(ledgerLeaseSeconds)
  REDRIVE_SCHEDULE: redriveSchedule
  REDRIVE_MAX_AGE_HOURS: string(redriveMaxAgeHours)
  REDRIVE_MIN_INTERVAL_SECONDS: string(redriveMinIntervalSeconds)
  HEC_URL: hecUrl
  HEC_TOKEN: '@Microsoft.KeyVault(SecretUri=${hecTokenSecret.properties.secretUri})'
  SMTP_URL: '@Microsoft.KeyVault(SecretUri=${smtpUrlSecret.properties.secretUri})'
  ONCALL_TEAMS_URL: '@Microsoft.KeyVault(SecretUri=${oncallTeamsUrlSecret.properties.secretUri})'
  PLATFORM_TEAMS_URL: '@Microsoft.KeyVault(SecretUri=${platformTeamsUrlSecret.properties.secretUri})'
}

resource functionAppAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(functionAppSettings, extraAppSettings)
  dependsOn: [
    // The host starts reading storage, Event Hubs and Key Vault as soon as its settings exist.
    storageBlobDataOwnerAssignment
    eventHubsDataReceiverAssignment
    keyVaultSecretsUserAssignment
    monitoringMetricsPublisherAssignment
    containers
  ]
}

// ---------------------------------------------------------------------------------------------------------
// Role assignments for the app's identity (least scope that works)
// ---------------------------------------------------------------------------------------------------------

resource eventHubsDataReceiverAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: eventHub
  name: guid(eventHub.id, functionApp.id, roles.eventHubsDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageBlobDataOwnerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, functionApp.id, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource keyVaultSecretsUserAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: keyVault
  name: guid(keyVault.id, functionApp.id, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource monitoringMetricsPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: appInsights
  name: guid(appInsights.id, functionApp.id, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------------------------------------------------
// Defender for Cloud continuous export to the Event Hub
// ---------------------------------------------------------------------------------------------------------

// Findings (SubAssessments) need their parent recommendation (Assessments): add it.
var chosenSources = union(exportSources, contains(exportSources, 'SubAssessments') ? ['Assessments'] : [])
var snapshotSources = includeSnapshots ? map(filter(chosenSources, source => source != 'Alerts'), source => '${source}Snapshot') : []

// One rule set per exported alert severity; rule sets are OR-ed.
var alertSeverities = ['low', 'medium', 'high']
var exportedAlertSeverities = minimumAlertSeverity == 'all' ? alertSeverities : skip(alertSeverities, indexOf(alertSeverities, minimumAlertSeverity))
var alertRuleSets = [
  for severity in exportedAlertSeverities: {
    rules: [
      {
        propertyJPath: 'Severity'
        propertyType: 'String'
        expectedValue: severity
        operator: 'Equals'
      }
    ]
  }
]

// Only alerts are filtered; every other source exports everything (no rule sets).
var exportEventSources = [
  for source in concat(chosenSources, snapshotSources): {
    eventSource: source
    ruleSets: source == 'Alerts' && minimumAlertSeverity != 'all' ? alertRuleSets : null
  }
]

resource continuousExport 'Microsoft.Security/automations@2023-12-01-preview' = if (deployContinuousExport) {
  name: 'defender-forwarder-export-${token}'
  location: location
  tags: allTags
  properties: {
    description: 'Defender for Cloud continuous export to the defender-forwarder Event Hub'
    isEnabled: true
    scopes: [
      {
        description: 'This subscription'
        scopePath: subscription().id
      }
    ]
    sources: exportEventSources
    actions: [
      {
        actionType: 'EventHub'
        eventHubResourceId: eventHub.id
        connectionString: defenderSendRule.listKeys().primaryConnectionString
      }
    ]
  }
}

// ---------------------------------------------------------------------------------------------------------
// Alert rules on what the app logs (JSON lines in App Insights traces)
// ---------------------------------------------------------------------------------------------------------

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: names.actionGroup
  location: 'global'
  tags: allTags
  properties: {
    groupShortName: 'defenderfwd'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var alertActionGroups = empty(alertEmail) ? [] : [actionGroup.id]

resource deadLetterAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'defender-forwarder-dead-letters-${token}'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: 'defender-forwarder: deliveries dead-lettered or a destination misconfigured'
    description: 'The forwarder logged record.deadLettered (a delivery failed after its retries) or destination.misconfigured (credentials or permissions of a destination are wrong).'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
traces
| where message has_any ('record.deadLettered', 'destination.misconfigured')
| extend line = parse_json(message)
| extend event = tostring(line.event), destination = tostring(line.destination)
| where event in ('record.deadLettered', 'destination.misconfigured')
| project timestamp, event, destination
'''
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertActionGroups
    }
  }
}

resource silenceAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'defender-forwarder-silent-${token}'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: 'defender-forwarder: no run.summary from the Event Hub function'
    description: 'The Event Hub function wrote no run.summary line in the window: no exports arrived, or the function does not run (settings, rules file, permissions).'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT${silenceAlertHours}H'
    criteria: {
      allOf: [
        {
          query: '''
traces
| where message has 'run.summary'
| extend line = parse_json(message)
| where tostring(line.event) == 'run.summary' and tostring(line.host) == 'function'
| project timestamp
'''
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertActionGroups
    }
  }
}

resource batchAgeAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'defender-forwarder-batch-age-${token}'
  location: location
  tags: allTags
  kind: 'LogAlert'
  properties: {
    displayName: 'defender-forwarder: batches older than ${batchAgeAlertMinutes} minutes'
    description: 'The metric forwarder.batch.age (now minus the enqueued time of the oldest event of a batch, when the forwarder starts on it) went over the threshold: the forwarder is behind the Event Hub (scale, partitions, a slow destination) or a partition is stuck while a store is unreachable. Exports older than the hub retention are lost.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: '''
customMetrics
| where name == 'forwarder.batch.age'
| summarize ageMinutes = max(valueMax) / 60000.0 by bin(timestamp, 5m)
'''
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'ageMinutes'
          operator: 'GreaterThan'
          threshold: batchAgeAlertMinutes
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertActionGroups
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment)
// ---------------------------------------------------------------------------------------------------------

@description('Name of the Function App.')
output AZURE_FUNCTION_APP_NAME string = functionApp.name

@description('Event Hubs namespace host name.')
output EVENTHUB_NAMESPACE_HOST string = '${eventHubNamespace.name}.servicebus.windows.net'

@description('Name of the Event Hub Defender exports to.')
output EVENTHUB_NAME string = eventHub.name

@description('Name of the Key Vault holding the destination secrets.')
output AZURE_KEY_VAULT_NAME string = keyVault.name

@description('Storage account of the host and the forwarder\'s blobs.')
output AZURE_STORAGE_ACCOUNT_NAME string = storage.name

@description('Application Insights resource name.')
output APPLICATIONINSIGHTS_NAME string = appInsights.name
