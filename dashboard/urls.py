from django.urls import path

from dashboard import (
    apikey_views,
    customer_views,
    deletion_views,
    export_views,
    menu_views,
    money_views,
    order_views,
    payment_views,
    promotion_views,
    views,
    webhook_views,
)

app_name = "dashboard"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("settings", views.SettingsView.as_view(), name="settings"),
    path("deletion", deletion_views.DeletionView.as_view(), name="deletion"),
    path("staff", views.StaffView.as_view(), name="staff"),
    path("audit", views.AuditLogView.as_view(), name="audit"),
    path("menus", menu_views.MenuEditorView.as_view(), name="menus"),
    path("menus/items/new", menu_views.ItemEditView.as_view(), name="item-new"),
    path("menus/items/<int:pk>", menu_views.ItemEditView.as_view(), name="item"),
    path("menus/items/<int:pk>/image", menu_views.ItemImageView.as_view(), name="item-image"),
    path("menus/publish", menu_views.PublishView.as_view(), name="publish"),
    path("sold-out", menu_views.SoldOutBoardView.as_view(), name="sold-out"),
    path("kitchen", order_views.KitchenView.as_view(), name="kitchen"),
    path("kitchen/queue", order_views.KitchenQueueView.as_view(), name="kitchen-queue"),
    path("orders", order_views.OrderListView.as_view(), name="orders"),
    path("orders/<int:pk>", order_views.OrderDetailView.as_view(), name="order"),
    path("orders/<int:pk>/status", order_views.OrderStatusView.as_view(), name="order-status"),
    path("orders/<int:pk>/cancel", order_views.OrderCancelView.as_view(), name="order-cancel"),
    path("orders/<int:pk>/refund", money_views.OrderRefundView.as_view(), name="order-refund"),
    path("customers", customer_views.CustomersView.as_view(), name="customers"),
    path("customers/<int:pk>", customer_views.CustomerView.as_view(), name="customer"),
    path("promotions", promotion_views.PromotionsView.as_view(), name="promotions"),
    path("promotions/<int:pk>", promotion_views.PromotionView.as_view(), name="promotion"),
    path("payments", payment_views.PaymentsView.as_view(), name="payments"),
    path("payments/refresh", payment_views.PaymentsRefreshView.as_view(), name="payments-refresh"),
    path("payments/return", payment_views.PaymentsReturnView.as_view(), name="payments-return"),
    path("payouts", money_views.PayoutsView.as_view(), name="payouts"),
    path("disputes", money_views.DisputesView.as_view(), name="disputes"),
    path("disputes/<int:pk>", money_views.DisputeView.as_view(), name="dispute"),
    path("exports", export_views.ExportsView.as_view(), name="exports"),
    path("exports/progress", export_views.ExportsProgressView.as_view(), name="exports-progress"),
    path("exports/download", export_views.ExportDownloadView.as_view(), name="export-download"),
    path("exports/<int:pk>/download", export_views.ExportLinkView.as_view(), name="export-link"),
    path("exports/<int:pk>/file", export_views.ExportFileView.as_view(), name="export-file"),
    path("api-keys", apikey_views.ApiKeysView.as_view(), name="api-keys"),
    path("api-keys/settings", apikey_views.ApiKeySettingsView.as_view(), name="api-key-settings"),
    path("api-keys/<int:pk>", apikey_views.ApiKeyView.as_view(), name="api-key"),
    path("api-keys/<int:pk>/roll", apikey_views.ApiKeyRollView.as_view(), name="api-key-roll"),
    path(
        "api-keys/<int:pk>/revoke", apikey_views.ApiKeyRevokeView.as_view(), name="api-key-revoke"
    ),
    path("webhooks", webhook_views.WebhooksView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>", webhook_views.WebhookView.as_view(), name="webhook"),
    path("webhooks/<int:pk>/state", webhook_views.WebhookStateView.as_view(), name="webhook-state"),
    path("webhooks/<int:pk>/test", webhook_views.WebhookTestView.as_view(), name="webhook-test"),
    path(
        "webhooks/<int:pk>/rotate", webhook_views.WebhookRotateView.as_view(), name="webhook-rotate"
    ),
    path(
        "webhooks/<int:pk>/recover",
        webhook_views.WebhookRecoverView.as_view(),
        name="webhook-recover",
    ),
    path(
        "webhooks/<int:pk>/delete", webhook_views.WebhookDeleteView.as_view(), name="webhook-delete"
    ),
    path(
        "webhooks/deliveries/<int:pk>/resend",
        webhook_views.DeliveryResendView.as_view(),
        name="webhook-resend",
    ),
    path("switch", views.SwitchRestaurantView.as_view(), name="switch"),
    path("sign-in", views.sign_in, name="sign-in"),
    path("sign-out", views.sign_out, name="sign-out"),
]
